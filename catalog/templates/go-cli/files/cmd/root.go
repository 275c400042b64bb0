// Package cmd holds the subcommands and dispatches to them.
package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

// Set at build time: go build -ldflags "-X {{PROJECT_NAME}}/cmd.version=1.2.3".
var version = "dev"

const appName = "{{PROJECT_NAME}}"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is what a subcommand may touch, so tests can run it in memory.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	summary string
	run     func(e env, args []string) error
}

var commands = map[string]command{
	"greet":   {summary: "print a greeting", run: runGreet},
	"count":   {summary: "count lines, words and characters of files or stdin", run: runCount},
	"version": {summary: "print the version", run: runVersion},
}

// errUsage marks an error caused by bad arguments (exit code 2).
var errUsage = errors.New("usage error")

func usage(w io.Writer) {
	fmt.Fprintf(w, "%s: {{DESCRIPTION}}\n\nUsage:\n  %s <command> [flags]\n\nCommands:\n", appName, appName)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-9s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for the flags of a command.\n", appName)
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(e env, name, argsSyntax string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s %s [flags] %s\n\nFlags:\n", appName, name, argsSyntax)
		fs.PrintDefaults()
	}
	return fs
}

// Execute runs the command line args (without the program name) and returns
// the process exit code.
func Execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	case "-v", "--version":
		args = []string{"version"}
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", appName, args[0])
		usage(stderr)
		return exitUsage
	}
	if err := cmd.run(e, args[1:]); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			return exitUsage
		default:
			fmt.Fprintf(stderr, "%s %s: %v\n", appName, args[0], err)
			return exitError
		}
	}
	return exitOK
}

func runVersion(e env, args []string) error {
	fs := newFlagSet(e, "version", "")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	_, err := fmt.Fprintf(e.stdout, "%s %s\n", appName, version)
	return err
}

// parseError keeps -h as flag.ErrHelp and turns other flag errors into
// usage errors (the flag package has already printed the message).
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}
