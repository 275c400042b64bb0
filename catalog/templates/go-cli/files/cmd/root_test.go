package cmd

import (
	"bytes"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Execute(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestGreet(t *testing.T) {
	code, out, _ := run(t, "", "greet", "-name", "Ada", "-shout")
	if code != exitOK || out != "HELLO, ADA!\n" {
		t.Errorf("got code %d, output %q", code, out)
	}
}

func TestCountStdinJSON(t *testing.T) {
	code, out, _ := run(t, "one two\nthree\n", "count", "-json")
	if code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(out, `"words": 3`) || !strings.Contains(out, `"lines": 2`) {
		t.Errorf("unexpected output %s", out)
	}
}

func TestCountMissingFileFails(t *testing.T) {
	code, _, errOut := run(t, "", "count", "does-not-exist.txt")
	if code != exitError || !strings.Contains(errOut, "does-not-exist.txt") {
		t.Errorf("got code %d, stderr %q", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{},
		{"nope"},
		{"greet", "-bogus"},
		{"greet", "-times", "0"},
	}
	for _, args := range cases {
		if code, _, _ := run(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit code %d, want %d", args, code, exitUsage)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	if code, out, _ := run(t, "", "--help"); code != exitOK || !strings.Contains(out, "count") {
		t.Errorf("help: code %d, output %q", code, out)
	}
	if code, _, _ := run(t, "", "greet", "-h"); code != exitOK {
		t.Errorf("greet -h: code %d", code)
	}
	if code, out, _ := run(t, "", "version"); code != exitOK || !strings.Contains(out, version) {
		t.Errorf("version: code %d, output %q", code, out)
	}
}
