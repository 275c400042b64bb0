package cmd

import (
	"encoding/json"
	"fmt"
	"os"

	"{{PROJECT_NAME}}/internal/textstats"
)

type countResult struct {
	Name string `json:"name"`
	textstats.Stats
}

func runCount(e env, args []string) error {
	fs := newFlagSet(e, "count", "[file ...]")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}

	var results []countResult
	if fs.NArg() == 0 {
		s, err := textstats.Count(e.stdin)
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		results = append(results, countResult{Name: "-", Stats: s})
	}
	for _, path := range fs.Args() {
		s, err := countFile(path)
		if err != nil {
			return err
		}
		results = append(results, countResult{Name: path, Stats: s})
	}
	if len(results) > 1 {
		var total textstats.Stats
		for _, r := range results {
			total = total.Add(r.Stats)
		}
		results = append(results, countResult{Name: "total", Stats: total})
	}

	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	for _, r := range results {
		if _, err := fmt.Fprintf(e.stdout, "%8d %8d %8d %s\n", r.Lines, r.Words, r.Chars, r.Name); err != nil {
			return err
		}
	}
	return nil
}

func countFile(path string) (textstats.Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return textstats.Stats{}, err
	}
	defer f.Close()
	return textstats.Count(f)
}
