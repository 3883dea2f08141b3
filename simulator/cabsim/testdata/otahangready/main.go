// Command otahangready is a firmware build that tells the service manager
// it is ready and then hangs: it never sends WATCHDOG=1 (the update tests'
// release whose loop is stuck after start, which only the watchdog can
// catch).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/bangfu/cabinet/internal/sdnotify"
)

func main() {
	n, err := sdnotify.FromEnv()
	if err == nil {
		err = n.Ready()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "otahangready:", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
