// Command {{PROJECT_NAME}}: {{DESCRIPTION}}.
package main

import (
	"os"

	"{{PROJECT_NAME}}/cmd"
)

func main() {
	os.Exit(cmd.Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
