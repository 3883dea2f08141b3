package main

// The daemon's side of systemd's service protocol: READY=1 once the device
// loop runs (Type=notify), WATCHDOG=1 from that loop while it ticks
// (WatchdogSec=), STOPPING=1 on the way out. Outside systemd (no
// NOTIFY_SOCKET: the simulator, a technician's shell, the tests) it does
// nothing.

import (
	"log/slog"
	"sync"

	"github.com/bangfu/cabinet/internal/sdnotify"
)

type service struct {
	n     *sdnotify.Notifier
	wd    *sdnotify.Pinger
	log   *slog.Logger
	ready sync.Once
}

// newService reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. A bad
// value is logged and leaves that part off: the firmware still runs (and
// systemd, which then hears nothing, says so in the journal).
func newService(log *slog.Logger) *service {
	n, err := sdnotify.FromEnv()
	if err != nil {
		log.Error("service notification off", "err", err)
		n = nil
	}
	s := &service{n: n, log: log}
	if n == nil {
		return s
	}
	every, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Error("service watchdog off", "err", err)
	}
	if every > 0 {
		s.wd = sdnotify.NewPinger(n, every, nil)
		log.Info("service watchdog on", "timeout", every)
	}
	return s
}

// tick is the device loop's OnTick: the first tick says the firmware is
// serving, and every tick may keep the watchdog fed (at most twice per
// watchdog timeout). A loop stuck in a tick stops both.
func (s *service) tick() {
	if s.n == nil {
		return
	}
	s.ready.Do(func() {
		if err := s.n.Ready(); err != nil {
			s.log.Error("service ready", "err", err)
		}
	})
	if s.wd != nil && !s.wd.Ping() {
		if err := s.wd.Err(); err != nil {
			s.log.Warn("service watchdog ping", "err", err)
		}
	}
}

// stopping tells systemd the firmware is shutting down.
func (s *service) stopping() {
	if err := s.n.Stopping(); err != nil {
		s.log.Warn("service stopping", "err", err)
	}
}
