// Command otacrash is a firmware build that crashes at start (the update
// tests' bad release).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "otacrash: crashing at start")
	os.Exit(1)
}
