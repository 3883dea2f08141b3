package cabsim

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bangfu/cabinet/firmware/ledger"
	"github.com/bangfu/cabinet/hal/sim"
	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Errors the API maps to statuses.
var (
	ErrNotFound   = errors.New("cabsim: no such cabinet")
	ErrNoPlatform = errors.New("cabsim: the platform is external (-platform=external): scan through it")
)

// DoorView, ShelfView and CabinetView are the shapes of docs/simulator.md.
type DoorView struct {
	Door      int  `json:"door"`
	Open      bool `json:"open"`
	Locked    bool `json:"locked"`
	Energised bool `json:"energised"`
}

// ShelfView is one shelf as the API shows it.
type ShelfView struct {
	Shelf int            `json:"shelf"`
	Door  int            `json:"door"`
	Items map[string]int `json:"items"`
	TrueG float64        `json:"true_g"`
	LeanG float64        `json:"lean_g,omitempty"` // a shopper leaning on it (POST …/lean)
	ReadG float64        `json:"read_g"`
	// A shelf on two load cells (-two-cell) shows its right cell too: its
	// share of true_g, what its scale reads, and where a lean pushes.
	RightG     *float64 `json:"right_g,omitempty"`
	ReadRightG *float64 `json:"read_right_g,omitempty"`
	LeanX      *float64 `json:"lean_x,omitempty"`
}

// CabinetView is GET /api/cabinets/{id}.
type CabinetView struct {
	ID      string          `json:"id"`
	Mode    string          `json:"mode"` // the firmware's, or "offline" while none runs
	Doors   []DoorView      `json:"doors"`
	Shelves []ShelfView     `json:"shelves"`
	Display map[string]any  `json:"display"`
	Session *ledger.Session `json:"session"`
	Status  any             `json:"status,omitempty"`
	Power   string          `json:"power"`    // "on" or "off" (POST …/power)
	Network string          `json:"network"`  // "up", "down" (POST …/network), or "direct" when not relayed
	Runs    string          `json:"firmware"` // inprocess or process
}

// View returns a cabinet's state.
func (s *Sim) View(id string) (CabinetView, error) {
	c, ok := s.byID[id]
	if !ok {
		return CabinetView{}, ErrNotFound
	}
	snap := c.HW.Snapshot()
	v := CabinetView{ID: id, Mode: "offline", Display: map[string]any{"qr": snap.Display.QR, "status": snap.Display.Status},
		Power: "on", Network: "direct", Runs: s.opts.Firmware}
	if !snap.Powered {
		v.Power = "off"
	}
	if c.proxy != nil {
		v.Network = "up"
		if c.proxy.Down() {
			v.Network = "down"
		}
	}
	for _, d := range snap.Doors {
		v.Doors = append(v.Doors, DoorView{Door: d.Door, Open: d.Open, Locked: d.Locked, Energised: d.Energised})
	}
	for _, sh := range snap.Shelves {
		v.Shelves = append(v.Shelves, ShelfView{Shelf: sh.Shelf, Door: sh.Door, Items: sh.Items,
			TrueG: round1(sh.TrueG), LeanG: round1(sh.LeanG), ReadG: round1(sh.ReadG),
			RightG: roundPtr(sh.RightG), ReadRightG: roundPtr(sh.ReadRightG), LeanX: sh.LeanX})
	}
	if st, ok := c.Status(); ok {
		v.Mode = st.Mode
		v.Session = st.Session
		v.Status = st
	}
	return v, nil
}

// roundPtr is round1 of *v, nil for nil.
func roundPtr(v *float64) *float64 {
	if v == nil {
		return nil
	}
	r := round1(*v)
	return &r
}

func round1(v float64) float64 {
	if v < 0 {
		return -round1(-v)
	}
	return float64(int64(v*10+0.5)) / 10
}

// Scan is a phone scanning the QR the cabinet shows now, for door (0:
// door 1).
func (s *Sim) Scan(ctx context.Context, id string, buyer msg.Buyer, limitFen int64, door int) (msg.Command, msg.Reply, error) {
	c, ok := s.byID[id]
	if !ok {
		return msg.Command{}, msg.Reply{}, ErrNotFound
	}
	if s.Platform == nil {
		return msg.Command{}, msg.Reply{}, ErrNoPlatform
	}
	qr := c.HW.Snapshot().Display.QR
	if qr == "" {
		return msg.Command{}, msg.Reply{}, fmt.Errorf("cabsim: cabinet %s shows no QR code (mode %q)", id, c.mode())
	}
	return s.Platform.Scan(ctx, qr, buyer, limitFen, door)
}

func (c *Cabinet) mode() string {
	if st, ok := c.Status(); ok {
		return st.Mode
	}
	return "offline"
}

// Door opens or closes a door as a person would.
func (s *Sim) Door(id string, door int, action string, force bool) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	if door == 0 {
		door = 1
	}
	switch action {
	case "open":
		return c.HW.OpenDoor(door, force)
	case "close":
		return c.HW.CloseDoor(door)
	}
	return fmt.Errorf("cabsim: door action %q: want open or close", action)
}

// Take takes qty units of sku off a shelf.
func (s *Sim) Take(id string, shelf int, sku string, qty int) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	if qty == 0 {
		qty = 1
	}
	return c.HW.Take(shelf, sku, qty)
}

// Put puts units of a catalog product, or a foreign object of objectG
// grams, on a shelf.
func (s *Sim) Put(id string, shelf int, sku string, qty int, objectG float64) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	if sku == "" {
		if objectG <= 0 {
			return errors.New("cabsim: put needs a sku or a positive object_g")
		}
		return c.HW.PutObject(shelf, objectG)
	}
	if qty == 0 {
		qty = 1
	}
	if p, ok := s.goods.Product(sku); ok {
		return c.HW.Put(shelf, sku, p.UnitWeightG, qty)
	}
	return fmt.Errorf("cabsim: %q is not a product the simulator knows", sku)
}

// Lean has a shopper lean on a shelf with grams of force (door open), or
// let go with 0; closing the door lets go too. Letting go leaves the load
// cell a small hysteresis offset (hal/sim Cabinet.Lean).
func (s *Sim) Lean(id string, shelf int, grams float64) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	return c.HW.Lean(shelf, grams)
}

// LeanAt is Lean at position x along the shelf, 0 over its left load cell
// and 1 over its right; only a two-cell shelf tells (hal/sim
// Cabinet.LeanAt).
func (s *Sim) LeanAt(id string, shelf int, grams, x float64) error {
	c, ok := s.byID[id]
	if !ok {
		return ErrNotFound
	}
	return c.HW.LeanAt(shelf, grams, x)
}

//go:embed ui.html
var uiHTML []byte

// Handler serves the HTTP API of docs/simulator.md and the web UI.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(uiHTML)
	})
	mux.HandleFunc("GET /api/cabinets", func(w http.ResponseWriter, r *http.Request) {
		out := []CabinetView{}
		for _, c := range s.cabinets {
			v, err := s.View(c.ID)
			if err != nil {
				writeErr(w, http.StatusInternalServerError, err)
				return
			}
			out = append(out, v)
		}
		writeJSON(w, http.StatusOK, map[string]any{"cabinets": out})
	})
	mux.HandleFunc("GET /api/cabinets/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.View(r.PathValue("id"))
		if err != nil {
			writeErr(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET /api/cabinets/{id}/display.png", func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.byID[r.PathValue("id")]
		if !ok {
			writeErr(w, http.StatusNotFound, ErrNotFound)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		if err := c.HW.DisplayPNG(w); err != nil {
			s.log.Warn("display png", "err", err)
		}
	})
	mux.HandleFunc("POST /api/cabinets/{id}/scan", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Buyer    msg.Buyer `json:"buyer"`
			LimitFen int64     `json:"limit_fen"`
			Door     int       `json:"door"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		cmd, reply, err := s.Scan(ctx, r.PathValue("id"), body.Buyer, body.LimitFen, body.Door)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoPlatform):
			writeErr(w, http.StatusNotFound, err)
		case err != nil:
			writeErr(w, http.StatusConflict, err)
		case !reply.OK:
			writeJSON(w, http.StatusConflict, map[string]any{"error": reply.Error + ": " + reply.Detail, "reply": reply, "command": cmd})
		default:
			writeJSON(w, http.StatusOK, map[string]any{"session_id": cmd.SessionID, "reply": reply, "command": cmd})
		}
	})
	mux.HandleFunc("POST /api/cabinets/{id}/door", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Door   int    `json:"door"`
			Action string `json:"action"`
			Force  bool   `json:"force"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.act(w, r, s.Door(r.PathValue("id"), body.Door, body.Action, body.Force))
	})
	mux.HandleFunc("POST /api/cabinets/{id}/take", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Shelf int    `json:"shelf"`
			SKU   string `json:"sku"`
			Qty   int    `json:"qty"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.act(w, r, s.Take(r.PathValue("id"), body.Shelf, body.SKU, body.Qty))
	})
	mux.HandleFunc("POST /api/cabinets/{id}/put", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Shelf   int     `json:"shelf"`
			SKU     string  `json:"sku"`
			Qty     int     `json:"qty"`
			ObjectG float64 `json:"object_g"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.act(w, r, s.Put(r.PathValue("id"), body.Shelf, body.SKU, body.Qty, body.ObjectG))
	})
	mux.HandleFunc("POST /api/cabinets/{id}/lean", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Shelf int      `json:"shelf"`
			G     *float64 `json:"g"`
			X     *float64 `json:"x"` // where along the shelf; default the middle
		}
		if !readJSON(w, r, &body) {
			return
		}
		if body.G == nil || *body.G < 0 || *body.G > sim.MaxLeanG {
			writeErr(w, http.StatusBadRequest, fmt.Errorf(`lean needs "g", the grams of force from 0 (let go) to %d`, sim.MaxLeanG))
			return
		}
		if body.X == nil {
			s.act(w, r, s.Lean(r.PathValue("id"), body.Shelf, *body.G))
			return
		}
		if !(*body.X >= 0 && *body.X <= 1) {
			writeErr(w, http.StatusBadRequest, errors.New(`lean "x", where along the shelf, goes from 0 (left load cell) to 1 (right)`))
			return
		}
		s.act(w, r, s.LeanAt(r.PathValue("id"), body.Shelf, *body.G, *body.X))
	})
	mux.HandleFunc("POST /api/cabinets/{id}/power", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Action string `json:"action"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.act(w, r, s.Power(r.PathValue("id"), body.Action))
	})
	mux.HandleFunc("POST /api/cabinets/{id}/network", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Action string `json:"action"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.act(w, r, s.Network(r.PathValue("id"), body.Action))
	})
	platformOnly := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.Platform == nil {
				writeErr(w, http.StatusNotFound, ErrNoPlatform)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /api/platform/catalog", platformOnly(func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.Platform.Catalog()
		if !ok {
			writeErr(w, http.StatusNotFound, errors.New("no catalog published"))
			return
		}
		writeJSON(w, http.StatusOK, c)
	}))
	mux.HandleFunc("GET /api/platform/sales", platformOnly(func(w http.ResponseWriter, r *http.Request) {
		recs, gaps := s.Platform.Sales()
		sales := make([]msg.Sale, 0, len(recs))
		// A reviewed sale keeps its document as the cabinet signed it; how
		// a reviewer settled it comes beside it, by sale id (an addition).
		reviews := map[string]*platform.Review{}
		for _, rec := range recs {
			sales = append(sales, rec.Sale)
			if rec.Review != nil {
				reviews[rec.Sale.SaleID] = rec.Review
			}
		}
		if gaps == nil {
			gaps = []platform.Gap{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"sales": sales, "gaps": gaps, "reviews": reviews})
	}))
	mux.HandleFunc("GET /api/platform/alarms", platformOnly(func(w http.ResponseWriter, r *http.Request) {
		alarms := s.Platform.Alarms()
		if alarms == nil {
			alarms = []platform.AlarmRecord{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"alarms": alarms})
	}))
	mux.HandleFunc("GET /api/platform/report", platformOnly(func(w http.ResponseWriter, r *http.Request) {
		s.serveReport(w, r)
	}))
	mux.HandleFunc("GET /api/platform/reconciliation", platformOnly(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"cabinets": s.Platform.Reconciliation()})
	}))
	mux.HandleFunc("POST /api/platform/sales/{sale_id}/review", platformOnly(func(w http.ResponseWriter, r *http.Request) {
		var body platform.ReviewRequest
		if !readJSON(w, r, &body) {
			return
		}
		rec, err := s.Platform.ReviewSale(r.PathValue("sale_id"), body)
		switch {
		case errors.Is(err, platform.ErrBadReview):
			writeErr(w, http.StatusBadRequest, err)
		case errors.Is(err, platform.ErrUnknownSale):
			writeErr(w, http.StatusNotFound, err)
		case errors.Is(err, platform.ErrNotReviewable):
			writeErr(w, http.StatusConflict, err)
		case err != nil:
			writeErr(w, http.StatusInternalServerError, err)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"sale_id": rec.Sale.SaleID, "status": rec.Sale.Status,
				"review": rec.Review, "sale": rec.Sale})
		}
	}))
	mux.HandleFunc("GET /api/fleet", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Fleet())
	})
	mux.HandleFunc("GET /api/load", func(w http.ResponseWriter, r *http.Request) {
		rep, ok := s.LoadReport()
		if !ok {
			writeErr(w, http.StatusNotFound, errNoLoad)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	return jsonErrors(mux)
}

// serveReport is GET /api/platform/report: the county sales form as CSV
// (the default) or xlsx, for closed_at in [from, to) and one cabinet or all.
func (s *Sim) serveReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f platform.ReportFilter
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(b.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeErr(w, http.StatusBadRequest, fmt.Errorf("%s=%.40q: want an RFC 3339 time such as 2026-12-01T00:00:00+08:00", b.name, v))
				return
			}
			*b.t = t.UTC()
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		writeErr(w, http.StatusBadRequest, errors.New("from must be before to"))
		return
	}
	f.Cabinet = q.Get("cabinet")
	if f.Cabinet != "" && !msg.ValidCabinetID(f.Cabinet) {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("cabinet=%.70q is not a cabinet id", f.Cabinet))
		return
	}
	var origins map[string]string
	if c, ok := s.Platform.Catalog(); ok {
		origins = platform.Origins(c)
	}
	rows := platform.ReportRows(s.Platform.SalesRecords(), f, origins)
	name := "bangfu-sales-" + time.Now().In(platform.CST).Format("20060102-150405")
	switch format := q.Get("format"); format {
	case "", "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		if err := platform.WriteReportCSV(w, rows); err != nil {
			s.log.Warn("report csv", "err", err)
		}
	case "xlsx":
		var buf bytes.Buffer
		if err := platform.WriteReportXLSX(&buf, rows); err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.xlsx"`)
		w.Write(buf.Bytes())
	default:
		writeErr(w, http.StatusBadRequest, fmt.Errorf("format=%.20q: want csv or xlsx", format))
	}
}

// jsonErrors answers what the mux itself refuses (unknown path, wrong
// method) with the API's {"error": …} shape instead of plain text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // the mux sets the path values; Handler does not
			return
		}
		rec := &statusOnly{header: http.Header{}}
		h.ServeHTTP(rec, r) // the mux's own 404 or 405, to learn which
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		code := rec.code
		if code == 0 {
			code = http.StatusNotFound
		}
		writeErr(w, code, fmt.Errorf("%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(code))))
	})
}

// statusOnly records a handler's status and headers, dropping its body.
type statusOnly struct {
	header http.Header
	code   int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.code = code }

func (s *Sim) act(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeErr(w, http.StatusNotFound, err)
	case err != nil:
		writeErr(w, http.StatusConflict, err)
	default:
		v, verr := s.View(r.PathValue("id"))
		if verr != nil {
			writeErr(w, http.StatusInternalServerError, verr)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return false
	}
	if strings.TrimSpace(string(data)) == "" {
		data = []byte("{}")
	}
	if err := msg.DecodeStrict(data, v); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // the client may have gone; nothing to do about it
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
