// Command bangfu-audit checks a raw archive of the cabinets' MQTT traffic
// without trusting any database, and writes the county sales form from it.
//
//	mosquitto_sub -v -t 'bangfu/v1/#' > traffic.txt        # topic, space, payload per line
//	bangfu-audit -keys cabinets.keys -o form.csv traffic.txt
//
// It verifies the signature of every cabinet message (sale, heartbeat,
// alarm, reply, restock) against the cabinets' public keys from the keys
// file (the archive carries no keys: a cabinet's key is registered at
// provisioning, docs/contract.md), checks each cabinet's sale sequence
// from 1 for gaps, de-duplicates sales by sale_id, checks the heartbeats'
// counters (never backwards; the sales they claim against the sales in
// the archive), and writes the form (CSV, the simulator's report writer)
// from the verified sales. Problems go to stderr with a summary.
//
// Exit status: 0 when everything checks, 1 when anything is wrong
// (a bad signature, an unregistered cabinet, a malformed line, a missing
// sale, two different documents for one sale_id or one seq, counters that
// disagree), 2 on a usage or I/O error. An identical copy of a sale (a
// redelivery, which the contract allows) is reported but fails only with
// -strict.
//
// The keys file has one cabinet a line, "CABINET-ID BASE64URL-KEY";
// blank lines and # comments are ignored, and the lines cabsim prints at
// start ("cabsim: cabinet NM-150102-0007 key …") are read as they are.
//
// With -platform-keys (one platform key a line, "KID BASE64URL-KEY" or
// "KID=BASE64URL-KEY", or cabsim's "cabsim: platform key KID=KEY"), what the platform sent is checked too:
// every command, ack, planogram and catalog must carry a valid signature
// by one of those keys; a command or planogram must name the cabinet whose
// topic it came on, and an ack too when it names one; and an ack must not
// release sales the archive never saw from that cabinet (sales_upto_seq
// beyond its highest sale). Without it these messages are counted as not
// checked.
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: bangfu-audit -keys FILE [-platform-keys FILE] [-o FORM.csv] [-prefix P] [-from T] [-to T] [-cabinet ID] [-strict] [ARCHIVE ...]

Reads the archive files (default stdin; "-" is stdin), lines as
mosquitto_sub -v writes them: topic, a space, the payload.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bangfu-audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage, "\nflags:\n")
		fs.PrintDefaults()
	}
	keysPath := fs.String("keys", "", "the cabinets' public keys: one \"CABINET-ID BASE64URL-KEY\" a line (required)")
	platPath := fs.String("platform-keys", "", "the platform's public keys: one \"KID BASE64URL-KEY\" a line; check what the platform sent (commands, acks, planograms, catalog) too")
	out := fs.String("o", "-", "write the county sales form (CSV) here; - is stdout")
	prefix := fs.String("prefix", msg.DefaultPrefix, "the topic prefix")
	from := fs.String("from", "", "the form holds sales closed at or after this RFC 3339 time")
	to := fs.String("to", "", "the form holds sales closed before this RFC 3339 time")
	cabinet := fs.String("cabinet", "", "the form holds this cabinet's sales only")
	strictDup := fs.Bool("strict", false, "count identical redeliveries of a sale as problems too")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "bangfu-audit:", err)
		return 2
	}
	if *keysPath == "" {
		fs.Usage()
		return 2
	}
	var filter platform.ReportFilter
	for _, b := range []struct {
		name, v string
		t       *time.Time
	}{{"-from", *from, &filter.From}, {"-to", *to, &filter.To}} {
		if b.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, b.v)
		if err != nil {
			return fail(fmt.Errorf("%s %q: want an RFC 3339 time", b.name, b.v))
		}
		*b.t = t.UTC()
	}
	filter.Cabinet = *cabinet
	keys, err := readKeys(*keysPath)
	if err != nil {
		return fail(err)
	}
	a := newAudit(*prefix, keys)
	if *platPath != "" {
		if a.platform, err = readPlatformKeys(*platPath); err != nil {
			return fail(err)
		}
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	for _, name := range files {
		if err := a.readFile(name, stdin); err != nil {
			return fail(err)
		}
	}
	a.finish()

	// The form first, so that a failed audit still leaves it to look at.
	w := stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out); err != nil {
			return fail(err)
		}
		w = f
	}
	err = platform.WriteReportCSV(w, platform.ReportRows(a.records(), filter, nil))
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fail(err)
	}
	problems := a.summary(stderr, *strictDup)
	if problems > 0 {
		fmt.Fprintf(stderr, "bangfu-audit: %d problem(s)\n", problems)
		return 1
	}
	fmt.Fprintln(stderr, "bangfu-audit: everything checks")
	return 0
}

// readKeys reads the keys file.
func readKeys(path string) (map[string]ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys := map[string]ed25519.PublicKey{}
	for i, ln := range strings.Split(string(data), "\n") {
		if c := strings.IndexByte(ln, '#'); c >= 0 {
			ln = ln[:c]
		}
		f := strings.Fields(ln)
		var id, key string
		switch {
		case len(f) == 0:
			continue
		case len(f) == 2:
			id, key = f[0], f[1]
		case len(f) >= 3 && f[len(f)-2] == "key": // cabsim's "cabsim: cabinet ID key KEY"
			id, key = f[len(f)-3], f[len(f)-1]
		default:
			return nil, fmt.Errorf("%s:%d: want \"CABINET-ID BASE64URL-KEY\"", path, i+1)
		}
		if !msg.ValidCabinetID(id) {
			return nil, fmt.Errorf("%s:%d: %.70q is not a cabinet id", path, i+1, id)
		}
		pub, err := msg.DecodeKey(key)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		if old, ok := keys[id]; ok && !old.Equal(pub) {
			return nil, fmt.Errorf("%s:%d: cabinet %s given two different keys", path, i+1, id)
		}
		keys[id] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	return keys, nil
}

// readPlatformKeys reads the platform keys file: "KID BASE64URL-KEY" or
// "KID=BASE64URL-KEY" a line, # comments and blank lines ignored; the line
// cabsim prints at start ("cabsim: platform key KID=KEY") reads as it is.
func readPlatformKeys(path string) (msg.KeyRing, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys := msg.KeyRing{}
	for i, ln := range strings.Split(string(data), "\n") {
		if c := strings.IndexByte(ln, '#'); c >= 0 {
			ln = ln[:c]
		}
		ln = strings.TrimPrefix(strings.TrimSpace(ln), "cabsim: platform key") // as cabsim prints it
		f := strings.Fields(strings.Replace(ln, "=", " ", 1))
		switch {
		case len(f) == 0:
			continue
		case len(f) != 2:
			return nil, fmt.Errorf("%s:%d: want \"KID BASE64URL-KEY\"", path, i+1)
		case !msg.ValidText(f[0], msg.MaxIDBytes):
			return nil, fmt.Errorf("%s:%d: %.70q is not a key id", path, i+1, f[0])
		}
		pub, err := msg.DecodeKey(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		if old, ok := keys[f[0]]; ok && !old.Equal(pub) {
			return nil, fmt.Errorf("%s:%d: key id %s given two different keys", path, i+1, f[0])
		}
		keys[f[0]] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	return keys, nil
}

// problem is one thing wrong, at a line of the archive (where) or about
// a cabinet as a whole.
type problem struct {
	where, cabinet, kind, text string
}

type heartbeat struct {
	at       time.Time
	counters msg.Counters
}

type cabinetAudit struct {
	sales      map[uint64]*platform.SaleRecord // by seq
	redelivery int
	last       *heartbeat // the newest heartbeat
	highest    msg.Counters
	acked      uint64 // the highest sales_upto_seq a verified ack released
	ackedAt    string // where that ack is
}

type audit struct {
	prefix   string
	keys     msg.KeyRing
	cabs     map[string]*cabinetAudit
	saleIDs  map[string]*platform.SaleRecord
	problems []problem
	dups     []problem // identical redeliveries
	lines    int
	verified map[string]int // verified messages by leaf
	skipped  int            // state, and the platform's messages without -platform-keys
	platform msg.KeyRing    // the platform's keys; nil: its messages are not checked
}

func newAudit(prefix string, keys map[string]ed25519.PublicKey) *audit {
	return &audit{prefix: prefix, keys: keys, cabs: map[string]*cabinetAudit{},
		saleIDs: map[string]*platform.SaleRecord{}, verified: map[string]int{}}
}

func (a *audit) cab(id string) *cabinetAudit {
	c, ok := a.cabs[id]
	if !ok {
		c = &cabinetAudit{sales: map[uint64]*platform.SaleRecord{}}
		a.cabs[id] = c
	}
	return c
}

func (a *audit) readFile(name string, stdin io.Reader) error {
	var r io.Reader = stdin
	label := "stdin"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r, label = f, name
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			a.line(fmt.Sprintf("%s:%d", label, n), line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
}

// line checks one archive line.
func (a *audit) line(where string, line []byte) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return
	}
	a.lines++
	topic, payload, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		a.problems = append(a.problems, problem{where: where, kind: "malformed", text: "no space between topic and payload"})
		return
	}
	if string(topic) == a.prefix+"/catalog" {
		a.fromPlatform(where, "", "catalog", payload)
		return
	}
	cab, leaf, ok := msg.ParseCabinetTopic(a.prefix, string(topic))
	if !ok {
		a.skipped++ // a topic outside the contract
		return
	}
	switch leaf {
	case "sale", "heartbeat", "alarm", "reply", "restock":
	case "cmd", "ack", "planogram":
		a.fromPlatform(where, cab, leaf, payload)
		return
	default: // state: not signed
		a.skipped++
		return
	}
	pub, ok := a.keys[cab]
	if !ok {
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "unregistered",
			text: leaf + " from a cabinet with no key in the keys file"})
		return
	}
	body, _, err := msg.KeyRing{cab: pub}.Open(payload)
	if err != nil {
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: openKind(err), text: leaf + ": " + err.Error()})
		return
	}
	a.verified[leaf]++
	switch leaf {
	case "sale":
		a.sale(where, cab, body)
	case "heartbeat":
		var hb msg.Heartbeat
		if err := json.Unmarshal(body, &hb); err != nil {
			a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "malformed", text: "heartbeat: " + err.Error()})
			return
		}
		c := a.cab(cab)
		h := hb.Counters
		if h.Sales < c.highest.Sales || h.LastSeq < c.highest.LastSeq || h.AmountFen < c.highest.AmountFen {
			a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "counters",
				text: fmt.Sprintf("heartbeat counters went backwards: %+v after %+v", h, c.highest)})
		}
		c.highest = msg.Counters{Sales: max(c.highest.Sales, h.Sales), LastSeq: max(c.highest.LastSeq, h.LastSeq),
			AmountFen: max(c.highest.AmountFen, h.AmountFen)}
		if c.last == nil || hb.At.After(c.last.at) {
			c.last = &heartbeat{at: hb.At.UTC(), counters: h}
		}
	}
}

// openKind is the problem an envelope that does not open is: malformed
// when it does not even decode, else tampered (a bad signature, another
// signer).
func openKind(err error) string {
	if errors.Is(err, msg.ErrMalformed) || errors.Is(err, msg.ErrTooLarge) {
		return "malformed"
	}
	return "tampered"
}

// fromPlatform checks a message the platform sent (cab is "" for the
// catalog), when the platform's keys are known.
func (a *audit) fromPlatform(where, cab, leaf string, payload []byte) {
	if a.platform == nil {
		a.skipped++
		return
	}
	body, _, err := a.platform.Open(payload)
	if err != nil {
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: openKind(err), text: "platform " + leaf + ": " + err.Error()})
		return
	}
	a.verified["platform "+leaf]++
	// Which cabinet a message names, against the topic it came on.
	decode := func(v any) bool {
		if err := json.Unmarshal(body, v); err != nil {
			a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "malformed", text: leaf + ": " + err.Error()})
			return false
		}
		return true
	}
	var named string
	switch leaf {
	case "cmd":
		var c msg.Command
		if !decode(&c) {
			return
		}
		named = c.CabinetID
	case "planogram":
		var p msg.Planogram
		if !decode(&p) {
			return
		}
		named = p.CabinetID
	case "ack":
		var k msg.Ack
		if !decode(&k) {
			return
		}
		named = k.CabinetID
		if named == "" {
			named = cab // an unbound ack (firmware before msg.AckCabinetIDSince)
		}
		if c := a.cab(cab); k.SalesUptoSeq > c.acked {
			c.acked, c.ackedAt = k.SalesUptoSeq, where
		}
	}
	if leaf != "catalog" && named != cab {
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "misdirected",
			text: fmt.Sprintf("platform %s naming cabinet %.64q on this cabinet's topic", leaf, named)})
	}
}

func (a *audit) sale(where, cab string, body []byte) {
	var s msg.Sale
	if err := json.Unmarshal(body, &s); err != nil {
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "malformed", text: "sale: " + err.Error()})
		return
	}
	if s.CabinetID != cab || s.Seq == 0 || s.SaleID == "" {
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "malformed",
			text: fmt.Sprintf("sale %.64q: cabinet_id %.64q seq %d on this cabinet's topic", s.SaleID, s.CabinetID, s.Seq)})
		return
	}
	c := a.cab(cab)
	if old, ok := a.saleIDs[s.SaleID]; ok {
		if reflect.DeepEqual(old.Sale, s) {
			old.Copies++
			c.redelivery++
			a.dups = append(a.dups, problem{where: where, cabinet: cab, kind: "duplicate",
				text: fmt.Sprintf("sale %s (seq %d) again, identical: a redelivery, counted once", s.SaleID, s.Seq)})
			return
		}
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "duplicate",
			text: fmt.Sprintf("sale %s (seq %d) again with a different document (first seq %d, total %d fen; now total %d fen)",
				s.SaleID, s.Seq, old.Sale.Seq, old.Sale.TotalFen, s.TotalFen)})
		return
	}
	if old, ok := c.sales[s.Seq]; ok {
		a.problems = append(a.problems, problem{where: where, cabinet: cab, kind: "duplicate",
			text: fmt.Sprintf("seq %d given to two sales: %s and %s", s.Seq, old.Sale.SaleID, s.SaleID)})
		return
	}
	rec := &platform.SaleRecord{Sale: s, Copies: 1}
	c.sales[s.Seq] = rec
	a.saleIDs[s.SaleID] = rec
}

// finish checks every cabinet's sequence and counters.
func (a *audit) finish() {
	for _, id := range slices.Sorted(mapKeys(a.cabs)) {
		c := a.cabs[id]
		var claimed *platform.Claimed
		if c.last != nil {
			claimed = &platform.Claimed{Sales: c.last.counters.Sales, LastSeq: c.last.counters.LastSeq,
				AmountFen: c.last.counters.AmountFen, At: c.last.at}
		}
		r := platform.Reconcile(id, a.salesOf(id), claimed, 0)
		if high := highestSeq(c); c.acked > high {
			a.problems = append(a.problems, problem{where: c.ackedAt, cabinet: id, kind: "ack",
				text: fmt.Sprintf("the platform acked sales up to seq %d; the archive holds this cabinet's sales up to seq %d only", c.acked, high)})
		}
		for _, g := range r.Gaps {
			text := fmt.Sprintf("sale seq %d missing", g.FromSeq)
			if g.ToSeq != g.FromSeq {
				text = fmt.Sprintf("sale seqs %d–%d missing (%d sales)", g.FromSeq, g.ToSeq, g.ToSeq-g.FromSeq+1)
			}
			a.problems = append(a.problems, problem{cabinet: id, kind: "missing", text: text})
		}
		if claimed != nil && (r.MissingSales != 0 || r.MissingAmountFen != 0) {
			a.problems = append(a.problems, problem{cabinet: id, kind: "counters",
				text: fmt.Sprintf("the heartbeat of %s claims %d sales (seq ≤ %d) worth %d fen; the archive holds %d worth %d fen",
					claimed.At.Format(time.RFC3339), claimed.Sales, claimed.LastSeq, claimed.AmountFen,
					r.Received.UptoClaimedSales, r.Received.UptoClaimedAmountFen)})
		}
	}
}

// highestSeq is the highest sale seq of the cabinet in the archive.
func highestSeq(c *cabinetAudit) uint64 {
	var high uint64
	for seq := range c.sales {
		high = max(high, seq)
	}
	return high
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (a *audit) salesOf(id string) []platform.SaleRecord {
	c := a.cabs[id]
	out := make([]platform.SaleRecord, 0, len(c.sales))
	for _, seq := range slices.Sorted(func(yield func(uint64) bool) {
		for k := range c.sales {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, *c.sales[seq])
	}
	return out
}

// records are the verified, de-duplicated sales of every cabinet.
func (a *audit) records() []platform.SaleRecord {
	var out []platform.SaleRecord
	for _, id := range slices.Sorted(mapKeys(a.cabs)) {
		out = append(out, a.salesOf(id)...)
	}
	return out
}

// summary writes what was checked and every problem, and returns how
// many problems count against the archive.
func (a *audit) summary(w io.Writer, strictDup bool) int {
	var sales int
	for _, c := range a.cabs {
		sales += len(c.sales)
	}
	fmt.Fprintf(w, "bangfu-audit: %d lines; %d sales from %d cabinets verified and de-duplicated", a.lines, sales, len(a.cabs))
	leaves := slices.Sorted(mapKeys(a.verified))
	var parts []string
	for _, l := range leaves {
		parts = append(parts, fmt.Sprintf("%d %s", a.verified[l], l))
	}
	unchecked := "state"
	if a.platform == nil {
		unchecked = "state, and without -platform-keys the platform's catalog, planogram, cmd and ack"
	}
	fmt.Fprintf(w, "; signatures verified: %s; %d lines not checked (%s)\n",
		strings.Join(parts, ", "), a.skipped, unchecked)
	for _, id := range slices.Sorted(mapKeys(a.cabs)) {
		c := a.cabs[id]
		fmt.Fprintf(w, "  %s: %d sales", id, len(c.sales))
		if c.last != nil {
			fmt.Fprintf(w, "; newest heartbeat %s: counters sales %d, last_seq %d, amount_fen %d",
				c.last.at.Format(time.RFC3339), c.last.counters.Sales, c.last.counters.LastSeq, c.last.counters.AmountFen)
		} else {
			fmt.Fprint(w, "; no heartbeat: counters not checked")
		}
		if c.redelivery > 0 {
			fmt.Fprintf(w, "; %d redelivered copies counted once", c.redelivery)
		}
		fmt.Fprintln(w)
	}
	all := a.problems
	if strictDup {
		all = append(slices.Clone(all), a.dups...)
	}
	write := func(title string, ps []problem) {
		if len(ps) == 0 {
			return
		}
		counts := map[string]int{}
		for _, p := range ps {
			counts[p.kind]++
		}
		var kinds []string
		for _, k := range slices.Sorted(mapKeys(counts)) {
			kinds = append(kinds, fmt.Sprintf("%d %s", counts[k], k))
		}
		fmt.Fprintf(w, "%s (%s):\n", title, strings.Join(kinds, ", "))
		for _, p := range ps {
			where := p.where
			if where == "" {
				where = p.cabinet
			} else if p.cabinet != "" {
				where += " " + p.cabinet
			}
			fmt.Fprintf(w, "  %s: %s: %s\n", where, p.kind, p.text)
		}
	}
	write("problems", all)
	if !strictDup {
		write("redeliveries (allowed by the contract; -strict counts them)", a.dups)
	}
	return len(all)
}
