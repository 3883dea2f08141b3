package firmware

// The device's side of a signed over-the-air update (docs/updates.md).
// The logic lives in firmware/ota; this file is the loop's wiring: the
// `update` command, the download's result, the switch at an idle moment,
// the trial version's health and commit, and the outcomes reported.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/firmware/ota"
	"github.com/bangfu/cabinet/internal/failpoint"
	"github.com/bangfu/cabinet/telemetry/msg"
	"github.com/bangfu/cabinet/telemetry/outbox"
)

// errUpdateRestart ends Run to restart into another firmware version: the
// service restarts the process (exit code 3, as after a reboot command).
var errUpdateRestart = fmt.Errorf("%w: firmware update", ErrReboot)

// updateState is the Run goroutine's view of an update.
type updateState struct {
	started    bool               // the first tick's work is done
	fetching   bool               // a download runs
	done       chan fetchResult   // its result
	ready      *readySwitch       // installed, waiting for an idle moment
	trial      *ota.Trial         // this process is a version on trial
	trialStart time.Time          // when this start began
	cancel     context.CancelFunc // stops the download
}

type fetchResult struct {
	d    ota.Download
	slot string
	err  error
}

type readySwitch struct {
	d    ota.Download
	slot string
}

// updateCommand handles `update`: checks, then the download starts.
func (d *Device) updateCommand(ctx context.Context, cmd msg.Command) {
	switch {
	case d.upd == nil:
		d.reply(nil, cmd.ID, msg.ErrBadRequest, "updates need the cabinet service (process mode)", nil)
		return
	case cmd.Bundle == nil:
		d.reply(nil, cmd.ID, msg.ErrBadRequest, "update: no bundle", nil)
		return
	case d.us.fetching || d.us.ready != nil:
		d.reply(nil, cmd.ID, msg.ErrBusy, "an update is already in progress", nil)
		return
	}
	if err := d.upd.Accept(cmd.ID, *cmd.Bundle); err != nil {
		d.log.Warn("update refused", "cmd", cmd.ID, "version", cmd.Bundle.Version, "err", err)
		d.reply(nil, cmd.ID, msg.ErrBadRequest, "update refused: "+err.Error(), nil)
		return
	}
	b := *cmd.Bundle
	d.reply(&cmd, cmd.ID, "", fmt.Sprintf("downloading %s (%d bytes); progress and outcome follow as update_* alarms", b.Version, b.Size), nil)
	d.startFetch(ctx, ota.Download{CmdID: cmd.ID, Bundle: b})
}

// startFetch downloads in a goroutine that stops with Run's context.
func (d *Device) startFetch(ctx context.Context, dl ota.Download) {
	if d.us.done == nil {
		d.us.done = make(chan fetchResult, 1)
	}
	fctx, cancel := context.WithCancel(ctx)
	d.us.cancel, d.us.fetching = cancel, true
	d.log.Info("update download", "version", dl.Bundle.Version, "url", dl.Bundle.URL, "size", dl.Bundle.Size)
	d.updWG.Go(func() {
		slot, err := d.upd.Fetch(fctx, dl)
		d.us.done <- fetchResult{d: dl, slot: slot, err: err}
	})
}

// updateFetched takes the download's result.
func (d *Device) updateFetched(ctx context.Context, r fetchResult) {
	d.us.fetching = false
	d.us.cancel()
	if ctx.Err() != nil {
		return // stopping: the download resumes at the next start
	}
	if r.err != nil {
		d.log.Warn("update download failed", "version", r.d.Bundle.Version, "err", r.err)
		if err := d.upd.Failed(r.d, r.err.Error()); err != nil {
			d.log.Error("update state", "err", err)
		}
		d.reportUpdates()
		return
	}
	d.log.Info("update installed; switching at the next idle moment", "version", r.d.Bundle.Version, "slot", r.slot)
	d.alarm(msg.AlarmUpdateProgress, msg.SevInfo, map[string]any{"stage": "installed", "version": r.d.Bundle.Version,
		"cmd_id": r.d.CmdID, "detail": "verified and installed; switching when no session is open"})
	d.us.ready = &readySwitch{d: r.d, slot: r.slot}
}

// fetchDone is the download's result channel (nil: none).
func (d *Device) fetchDone() <-chan fetchResult { return d.us.done }

// updateTick runs on every tick: the first start's work, the trial's
// health, and the switch once the cabinet is idle. A non-nil error ends
// Run to restart into another version.
func (d *Device) updateTick(ctx context.Context) error {
	if d.upd == nil {
		return nil
	}
	now := d.now()
	if !d.us.started {
		d.us.started = true
		st, err := d.upd.State()
		if err != nil {
			d.log.Error("update state unreadable", "err", err)
			return nil
		}
		if t := d.upd.OnTrial(); t != nil {
			d.us.trial, d.us.trialStart = t, now
			d.log.Info("firmware version on trial", "version", t.Version, "start", t.Starts, "health_s", d.cfg.UpdateHealthS)
			failpoint.Hit(failpoint.OTATrialStart)
		} else if st.Download != nil {
			d.startFetch(ctx, *st.Download) // accepted before a restart: download again
		}
		d.reportUpdates()
	}
	if t := d.us.trial; t != nil {
		why := d.updateUnhealthy(t)
		switch {
		case why == "":
			if err := d.upd.Commit(); err != nil {
				d.log.Error("update commit", "err", err)
				return nil
			}
			d.us.trial = nil
			d.log.Info("firmware update committed", "version", t.Version)
			failpoint.Hit(failpoint.OTACommitted)
			d.reportUpdates()
		case now.Sub(d.us.trialStart) > d.cfg.UpdateHealth():
			reason := fmt.Sprintf("not healthy within %ds: %s", d.cfg.UpdateHealthS, why)
			d.log.Error("firmware update rolls back", "version", t.Version, "reason", reason)
			if err := d.upd.RollBack(reason); err != nil {
				d.log.Error("update rollback", "err", err)
				return nil
			}
			return errUpdateRestart
		}
	}
	if r := d.us.ready; r != nil && d.sess == nil {
		if err := d.upd.Switch(r.d, r.slot, d.link.Connected()); err != nil {
			d.log.Error("update switch", "err", err)
			return nil
		}
		failpoint.Hit(failpoint.OTASwitched)
		d.log.Info("switching firmware", "version", r.d.Bundle.Version, "slot", r.slot)
		return errUpdateRestart
	}
	return nil
}

// updateUnhealthy says why the trial version is not healthy yet, or "".
func (d *Device) updateUnhealthy(t *ota.Trial) string {
	if d.catalog.Version() == 0 {
		return "no catalog"
	}
	if _, ok := d.catalog.PlanogramVersion(); !ok {
		return "no planogram"
	}
	for _, sh := range d.hw.Shelves {
		if err := d.readErr[sh.Number]; err != nil {
			return fmt.Sprintf("shelf %d scale: %v", sh.Number, err)
		}
		if _, ok := d.readings[sh.Number]; !ok {
			return fmt.Sprintf("shelf %d scale not reading yet", sh.Number)
		}
	}
	if t.NeedBroker && !d.link.Connected() {
		return "broker not connected (it was before the update)"
	}
	return ""
}

// reportUpdates queues every recorded outcome as an alarm under the
// outcome's own id (a copy repeated after a power cut is deduplicated by
// it), then drops them from state.json.
func (d *Device) reportUpdates() {
	st, err := d.upd.State()
	if err != nil || len(st.Pending) == 0 {
		return
	}
	var ids []string
	for _, o := range st.Pending {
		kind, sev := msg.AlarmUpdateFailed, msg.SevWarning
		switch o.Kind {
		case ota.OutcomeUpdated:
			kind, sev = msg.AlarmUpdateInstalled, msg.SevInfo
		case ota.OutcomeRolledBack:
			kind = msg.AlarmUpdateRolledBack
		}
		detail := map[string]any{"from": o.From, "to": o.To, "running": FW}
		if o.Reason != "" {
			detail["reason"] = o.Reason
		}
		if o.CmdID != "" {
			detail["cmd_id"] = o.CmdID
		}
		d.logAlarm(kind, sev, detail)
		it := ledger.Item{Kind: outbox.KindAlarm, Topic: d.topics.Alarm(), Body: msg.Alarm{
			AlarmID: o.ID, Kind: kind, Severity: sev, At: msg.At(o.At), Detail: detail}}
		if err := d.ledger.Enqueue(nil, it); err != nil {
			d.log.Error("queue update outcome", "err", err)
			return // kept in state.json: reported at the next start
		}
		ids = append(ids, o.ID)
	}
	if err := d.upd.Reported(ids...); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Error("update state", "err", err)
	}
}
