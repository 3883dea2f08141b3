// Command otahang is a firmware build that hangs at start without telling
// the service manager it is ready (the update tests' hung release). It
// sleeps rather than blocking on nothing, which the Go runtime would
// report as a deadlock and exit.
package main

import "time"

func main() {
	for {
		time.Sleep(time.Hour)
	}
}
