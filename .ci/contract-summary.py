# One line per schemathesis failure: operation | check | status and detail | curl.
# Usage: python3 .ci/contract-summary.py target/contract/admin.txt
import re,sys
t=open(sys.argv[1]).read()
blocks=re.split(r'\n_+ (\w+ \S+) _+\n',t)
for i in range(1,len(blocks),2):
    op=blocks[i]; body=blocks[i+1]
    for case in re.split(r'\n\d+\. Test Case ID',body):
        codes=re.findall(r'^- (ST\d+ [^\n]*)',case,re.M)
        resp=re.findall(r'^\[(\d+)\][^\n]*\n\n\s+(.{0,260})',case,re.M)
        curl=re.findall(r"curl [^\n]{0,300}",case)
        if codes: print(op,'|',codes,'|',resp[:1],'|',curl[:1])
