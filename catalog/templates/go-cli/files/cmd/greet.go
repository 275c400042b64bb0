package cmd

import (
	"fmt"
	"strings"
)

func runGreet(e env, args []string) error {
	fs := newFlagSet(e, "greet", "")
	name := fs.String("name", "world", "who to greet")
	shout := fs.Bool("shout", false, "print in upper case")
	times := fs.Int("times", 1, "how many times to greet (1-10)")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if *times < 1 || *times > 10 {
		fmt.Fprintln(e.stderr, "-times must be between 1 and 10")
		return errUsage
	}
	msg := fmt.Sprintf("Hello, %s!", *name)
	if *shout {
		msg = strings.ToUpper(msg)
	}
	for i := 0; i < *times; i++ {
		if _, err := fmt.Fprintln(e.stdout, msg); err != nil {
			return err
		}
	}
	return nil
}
