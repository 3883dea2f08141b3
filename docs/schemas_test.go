package docs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// ---- fixtures built with the Go wire types ----

const cab = "NM-150102-0007"

func now() msg.Time { return msg.At(time.Now()) }

func ago(d time.Duration) msg.Time { return msg.At(time.Now().Add(-d)) }

func ptr[T any](v T) *T { return &v }

func buyer() msg.Buyer { return msg.Buyer{Ref: "u-20391", Kind: msg.BuyerPerson, Org: ""} }

func evidence() []msg.Evidence {
	return []msg.Evidence{{Shelf: 1, BeforeG: 8012.4, AfterG: 7012.9, DeltaG: -999.5, ResidualG: 0.5}}
}

func exactSale() msg.Sale {
	return msg.Sale{
		SaleID: "01JPA7Q3M4X5K2Q7R9S0T1V2W3", Seq: 118, CabinetID: cab, SessionID: "s-7f3a9c",
		Buyer:    buyer(),
		OpenedAt: ago(90 * time.Second), ClosedAt: ago(10 * time.Second), SettledAt: now(),
		Status: msg.SaleExact,
		Lines: []msg.SaleLine{{SKU: "NM-0001", CertNo: "NMLV-2025-00017", Name: "Wuchuan potato flour 500 g",
			SupplierID: "sup-118", Supplier: "Wuchuan Cooperative", OriginCode: "150125",
			Shelf: 1, Qty: 2, UnitPriceFen: 2990, AmountFen: 5980}},
		TotalFen: 5980, Evidence: evidence(), CatalogVersion: 42, FW: "1.2.0",
	}
}

func heartbeat() msg.Heartbeat {
	return msg.Heartbeat{
		At: now(), UptimeS: 86400, FW: "1.2.0", Mode: msg.ModeIdle, Door: "closed",
		Shelves:     []msg.HeartbeatShelf{{Shelf: 1, OK: true, Grams: 7012.9}, {Shelf: 2, OK: false, Grams: 0}},
		TempC:       ptr(4.2),
		OutboxDepth: 1, CatalogVersion: 42, PlanogramVersion: 7,
		Counters: msg.Counters{Sales: 118, LastSeq: 118, AmountFen: 352310},
	}
}

func restock() msg.Restock {
	return msg.Restock{
		RestockID: "r-000031", SessionID: "s-81bb02", StaffID: "staff-007",
		OpenedAt: ago(5 * time.Minute), ClosedAt: now(),
		Changes:  []msg.RestockChange{{Shelf: 1, SKU: "NM-0001", DeltaQty: 12}, {Shelf: 2, SKU: "NM-0012", DeltaQty: -1}},
		Evidence: []msg.Evidence{{Shelf: 1, BeforeG: 1010.2, AfterG: 7010.8, DeltaG: 6000.6, ResidualG: 0.6}},
	}
}

func alarm() msg.Alarm {
	return msg.Alarm{AlarmID: "a-000412", Kind: msg.AlarmDoorOpenTooLong, Severity: msg.SevWarning,
		At: now(), Cleared: false, Detail: map[string]any{"door": 1, "open_s": 180}}
}

func catalog() msg.Catalog {
	return msg.Catalog{Version: 42, IssuedAt: ago(24 * time.Hour), Region: "150000", Products: []msg.Product{{
		SKU: "NM-0001", CertNo: "NMLV-2025-00017", Name: "Wuchuan potato flour 500 g", SupplierID: "sup-118",
		Supplier: "Wuchuan Cooperative", OriginCode: "150125", Origin: "Wuchuan County, Hohhot",
		UnitWeightG: 500.0, WeightTolG: 6.0, PriceFen: 2990,
		ValidUntil: msg.At(time.Now().AddDate(0, 6, 0)), Status: msg.StatusActive,
	}}}
}

func planogram() msg.Planogram {
	return msg.Planogram{Version: 7, CabinetID: cab, Shelves: []msg.PlanogramShelf{
		{Shelf: 1, Door: 1, SKUs: []string{"NM-0001", "NM-0007"}},
		{Shelf: 2, Door: 2, SKUs: []string{}},
	}}
}

func cmd(typ string) msg.Command {
	return msg.Command{ID: "c-" + typ, Type: typ, CabinetID: cab, IssuedAt: now(), ExpiresAt: msg.At(time.Now().Add(30 * time.Second))}
}

func unlock() msg.Command {
	c := cmd(msg.CmdUnlock)
	c.SessionID, c.QRNonce, c.Buyer, c.LimitFen = "s-7f3a9c", "q7Hk2mPz", ptr(buyer()), 20000
	return c
}

func cancelCmd() msg.Command {
	c := cmd(msg.CmdCancel)
	c.SessionID = "s-7f3a9c"
	return c
}

func reply() msg.Reply {
	return msg.Reply{CmdID: "c-unlock", OK: true, Error: "", Detail: "", At: now()}
}

func ack() msg.Ack { return msg.Ack{SalesUptoSeq: 118, At: now()} }

// ---- fixtures of the additions to v1 ----

// ambiguousSale is a sale judged by inference: two products of nearly one
// weight on shelf 1, the cheapest likely basket charged, the others listed.
func ambiguousSale() msg.Sale {
	s := exactSale()
	s.Status = msg.SaleAmbiguous
	s.Evidence = []msg.Evidence{{Shelf: 1, BeforeG: 8012.4, AfterG: 7011.8, DeltaG: -1000.6, ResidualG: -0.6}}
	s.Posterior = ptr(0.6213)
	s.Alternatives = []msg.SaleAlternative{
		{Lines: []msg.AltLine{{Shelf: 1, SKU: "NM-0001", Qty: 1}, {Shelf: 1, SKU: "NM-0007", Qty: 1}}, TotalFen: 6280, Posterior: 0.3561},
		{Lines: []msg.AltLine{{Shelf: 1, SKU: "NM-0007", Qty: 2}}, TotalFen: 6580, Posterior: 0.0219},
		{Lines: []msg.AltLine{{Shelf: 1, SKU: "NM-0001", Qty: 3}}, TotalFen: 8970, Posterior: 0.00007, Object: true},
	}
	return s
}

// alternatives returns n alternatives of falling posterior.
func alternatives(n int) []msg.SaleAlternative {
	out := make([]msg.SaleAlternative, n)
	for i := range out {
		out[i] = msg.SaleAlternative{Lines: []msg.AltLine{{Shelf: 1, SKU: "NM-0001", Qty: i + 3}},
			TotalFen: int64(i+3) * 2990, Posterior: 0.01 / float64(i+1), Moved: i%2 == 1}
	}
	return out
}

func planogramLanes() msg.Planogram {
	p := planogram()
	p.Version = 8
	p.Shelves[0].Lanes = map[string]float64{"NM-0001": 0.2, "NM-0007": 0.8}
	return p
}

// planogramReply is the cabinet's report on applied planogram 7.
func planogramReply() msg.Reply {
	return msg.Reply{CmdID: "planogram/7", OK: true, Detail: "planogram accepted", At: now(),
		Warnings: []string{"shelf 1: 1×NM-0001 (500 g) and 1×NM-0007 (502 g) weigh the same within tolerance"},
		Lint: &msg.LintReport{PredictedExactPct: 91.4, Sessions: 2000, Pass: false, Confusions: []msg.LintConfusion{
			{Taken: "1×NM-0007@1", ConfusedWith: "1×NM-0001@1", Pct: 4.1},
			{Taken: "1×NM-0001@1 + 1×NM-0007@1", ConfusedWith: "2×NM-0001@1", Pct: 2.3},
		}}}
}

func stockAlarm() msg.Alarm {
	return msg.Alarm{AlarmID: "a-000413", Kind: msg.AlarmStockMismatch, Severity: msg.SevWarning, At: now(),
		Detail: map[string]any{"shelf": 1, "sku": "NM-0001", "stock": 1, "removed": 2, "session": "s-80d1b4",
			"sale_id": "01JPA7T9Q2W4E6R8T0Y2V4X6Z8"}}
}

func signer(t testing.TB) msg.Signer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return msg.Signer{Kid: "cab-test", Key: key}
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// del, as an edit's value, makes patch remove the key.
type deleted struct{}

var del deleted

// patch marshals v, applies edits (pairs of a dotted path such as
// "lines.0.qty" and a value) and returns the JSON.
func patch(t testing.TB, v any, edits ...any) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(marshal(t, v)))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		keys := strings.Split(edits[i].(string), ".")
		cur := doc
		for _, k := range keys[:len(keys)-1] {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[k]
			case []any:
				n, _ := strconv.Atoi(k)
				cur = c[n]
			}
		}
		last := keys[len(keys)-1]
		switch c := cur.(type) {
		case map[string]any:
			if edits[i+1] == del {
				delete(c, last)
			} else {
				c[last] = edits[i+1]
			}
		case []any:
			n, _ := strconv.Atoi(last)
			c[n] = edits[i+1]
		default:
			t.Fatalf("patch %q: not a container", edits[i])
		}
	}
	return marshal(t, doc)
}

// raw is a JSON number written exactly as given.
func raw(s string) json.RawMessage { return json.RawMessage(s) }

// ---- tests ----

func TestNames(t *testing.T) {
	want := []string{"ack", "alarm", "catalog", "command", "envelope", "heartbeat", "planogram", "reply",
		"restock", "sale", "state"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	n := Names()
	n[0] = "mutated"
	if Names()[0] != "ack" {
		t.Fatal("Names() shares its slice with the caller")
	}
}

func TestSchemaFiles(t *testing.T) {
	for _, name := range append(Names(), defsName) {
		t.Run(name, func(t *testing.T) {
			b, err := schemaFS.ReadFile("schemas/" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				Schema string `json:"$schema"`
				ID     string `json:"$id"`
			}
			if err := json.Unmarshal(b, &head); err != nil {
				t.Fatal(err)
			}
			if head.Schema != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %q, want draft 2020-12", head.Schema)
			}
			if head.ID != name+".json" {
				t.Errorf("$id = %q, want the relative %q", head.ID, name+".json")
			}
			if name != defsName {
				if _, err := compiled[name](); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestValidGoMessages(t *testing.T) {
	emptySale := exactSale()
	emptySale.Status, emptySale.Lines, emptySale.TotalFen = msg.SaleEmpty, []msg.SaleLine{}, 0
	cancelled := emptySale
	cancelled.Status, cancelled.Evidence = msg.SaleCancelled, []msg.Evidence{}
	ambiguous := exactSale()
	ambiguous.Status = msg.SaleAmbiguous
	unionSale := exactSale()
	unionSale.Buyer = msg.Buyer{Ref: "acct-5521", Kind: msg.BuyerUnion, Org: "Hohhot Railway Union"}

	noTemp := heartbeat()
	noTemp.TempC = nil
	busy := heartbeat()
	busy.Mode, busy.Door, busy.CatalogVersion, busy.PlanogramVersion = msg.ModeShopping, "open", 0, 0
	busy.Counters = msg.Counters{}

	cleared := alarm()
	cleared.Kind, cleared.Severity, cleared.Cleared, cleared.Detail = msg.AlarmPowerRestored, msg.SevInfo, true, map[string]any{}
	unknownKind := alarm()
	unknownKind.Kind, unknownKind.Severity = "humidity", msg.SevCritical

	refused := reply()
	refused.OK, refused.Error, refused.Detail = false, msg.ErrStaleQR, "nonce not current"
	warned := reply()
	warned.Warnings = []string{"shelf 3: no SKU", "NM-0007 on two doors"}
	undecodable := msg.Reply{CmdID: "", OK: false, Error: msg.ErrBadRequest, Detail: "payload: unexpected EOF", At: now()}

	unlockDoor2 := unlock()
	unlockDoor2.Door = 2
	unlockUnit := unlock()
	unlockUnit.Buyer = &msg.Buyer{Ref: "emp-88", Kind: msg.BuyerUnit, Org: "Inner Mongolia Power"}
	restockOpen := cmd(msg.CmdRestockOpen)
	restockOpen.SessionID, restockOpen.StaffID, restockOpen.Door = "s-81bb02", "staff-007", 1
	resend := cmd(msg.CmdResend)
	resend.FromSeq, resend.ToSeq = 100, 118
	config := cmd(msg.CmdConfig)
	config.Settings = map[string]json.RawMessage{"heartbeat_s": raw("30"), "ack_mode": raw(`"broker"`)}
	reboot := cmd(msg.CmdReboot)

	sureSale := exactSale()
	sureSale.Posterior = ptr(0.9993)
	sureSale.Alternatives = []msg.SaleAlternative{{Lines: []msg.AltLine{{Shelf: 1, SKU: "NM-0007", Qty: 2}},
		TotalFen: 6580, Posterior: 0.0006, Moved: true}}
	certainSale := exactSale()
	certainSale.Posterior = ptr(1.0)
	emptyInferred := emptySale
	emptyInferred.Posterior = ptr(0.999)
	emptyInferred.Alternatives = []msg.SaleAlternative{{Lines: []msg.AltLine{{Shelf: 1, SKU: "NM-0001", Qty: 1}},
		TotalFen: 2990, Posterior: 0.0009}}
	nothingAlt := ambiguousSale()
	nothingAlt.Alternatives = []msg.SaleAlternative{{Lines: []msg.AltLine{}, TotalFen: 0, Posterior: 0}}
	maxAlts := ambiguousSale()
	maxAlts.Alternatives = alternatives(msg.MaxAlternatives)
	passing := planogramReply()
	passing.Warnings, passing.Lint.PredictedExactPct, passing.Lint.Pass = nil, 99.2, true
	passing.Lint.Confusions = []msg.LintConfusion{}
	lanesEdges := planogramLanes()
	lanesEdges.Shelves[0].Lanes = map[string]float64{"NM-0001": 0, "NM-0007": 1}
	stockCleared := stockAlarm()
	stockCleared.Cleared, stockCleared.Severity = true, msg.SevInfo

	emptyCatalog := catalog()
	emptyCatalog.Products = []msg.Product{}
	revoked := catalog()
	revoked.Products[0].Status = msg.StatusRevoked

	tests := []struct {
		name, schema string
		v            any
	}{
		{"state online", "state", msg.State{Online: true, FW: "1.2.0", At: ptr(now())}},
		{"state last will", "state", msg.State{Online: false}},
		{"heartbeat", "heartbeat", heartbeat()},
		{"heartbeat temp null", "heartbeat", noTemp},
		{"heartbeat shopping no catalog yet", "heartbeat", busy},
		{"sale exact", "sale", exactSale()},
		{"sale ambiguous", "sale", ambiguous},
		{"sale empty", "sale", emptySale},
		{"sale cancelled", "sale", cancelled},
		{"sale union buyer", "sale", unionSale},
		{"sale ambiguous with alternatives", "sale", ambiguousSale()},
		{"sale exact with posterior and a moved alternative", "sale", sureSale},
		{"sale posterior 1", "sale", certainSale},
		{"sale empty with an alternative", "sale", emptyInferred},
		{"sale alternative taking nothing", "sale", nothingAlt},
		{"sale alternatives at the cap", "sale", maxAlts},
		{"restock", "restock", restock()},
		{"alarm", "alarm", alarm()},
		{"alarm cleared empty detail", "alarm", cleared},
		{"alarm unknown kind", "alarm", unknownKind},
		{"alarm stock_mismatch", "alarm", stockAlarm()},
		{"alarm stock_mismatch cleared", "alarm", stockCleared},
		{"reply ok", "reply", reply()},
		{"reply refused", "reply", refused},
		{"reply warnings", "reply", warned},
		{"reply undecodable command", "reply", undecodable},
		{"reply planogram lint", "reply", planogramReply()},
		{"reply planogram lint passing", "reply", passing},
		{"catalog", "catalog", catalog()},
		{"catalog empty", "catalog", emptyCatalog},
		{"catalog revoked", "catalog", revoked},
		{"planogram", "planogram", planogram()},
		{"planogram lanes", "planogram", planogramLanes()},
		{"planogram lanes at 0 and 1", "planogram", lanesEdges},
		{"unlock default door", "command", unlock()},
		{"unlock door 2", "command", unlockDoor2},
		{"unlock unit buyer", "command", unlockUnit},
		{"restock_open", "command", restockOpen},
		{"cancel", "command", cancelCmd()},
		{"resend", "command", resend},
		{"config", "command", config},
		{"reboot", "command", reboot},
		{"ack", "ack", ack()},
		{"ack before first sale", "ack", msg.Ack{SalesUptoSeq: 0, At: now()}},
		{"envelope", "envelope", msg.Envelope{V: 1, Kid: "plat-2026a", Alg: msg.AlgEd25519,
			Payload: "e30", Sig: strings.Repeat("A", 86)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := marshal(t, tt.v)
			if err := Validate(tt.schema, doc); err != nil {
				t.Fatalf("%s\n%v", doc, err)
			}
			if tt.schema == "state" || tt.schema == "envelope" {
				return
			}
			// The same document as the firmware puts it on the wire.
			wire, err := signer(t).Seal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate("envelope", wire); err != nil {
				t.Errorf("envelope: %v", err)
			}
			if err := ValidateEnvelope(tt.schema, wire); err != nil {
				t.Errorf("ValidateEnvelope: %v", err)
			}
		})
	}
}

// invalidWhy says where (JSON pointer) and why (a fragment of the message)
// each invalid case must fail, so a case cannot pass for the wrong reason.
// Where "*": jsonschema v6.0.3 reports a nested propertyNames failure at a
// location slice it goes on to reuse, so the pointer is junk and only the
// message is checked.
var invalidWhy = map[string][2]string{
	"sale without sale_id":          {"", "missing property 'sale_id'"},
	"sale without evidence":         {"", "missing property 'evidence'"},
	"sale line without qty":         {"/lines/0", "missing property 'qty'"},
	"heartbeat without counters":    {"", "missing property 'counters'"},
	"heartbeat without temp_c":      {"", "missing property 'temp_c'"},
	"state without online":          {"", "missing property 'online'"},
	"state online without fw":       {"", "missing property 'fw'"},
	"reply without at":              {"", "missing property 'at'"},
	"alarm without detail":          {"", "missing property 'detail'"},
	"ack without seq":               {"", "missing property 'sales_upto_seq'"},
	"unlock without buyer":          {"", "missing property 'buyer'"},
	"unlock without limit":          {"", "missing property 'limit_fen'"},
	"restock_open without door":     {"", "missing property 'door'"},
	"resend without to_seq":         {"", "missing property 'to_seq'"},
	"config with empty settings":    {"/settings", "minProperties"},
	"catalog product without price": {"/products/0", "missing property 'price_fen'"},
	"envelope without sig":          {"", "missing property 'sig'"},
	"seq as string":                 {"/seq", "got string, want integer"},
	"qty as string":                 {"/lines/0/qty", "got string, want integer"},
	"uptime as string":              {"/uptime_s", "got string, want integer"},
	"grams as string":               {"/shelves/0/grams", "got string, want number"},
	"ok as string":                  {"/ok", "got string, want boolean"},
	"detail as string":              {"/detail", "got string, want object"},
	"version as string":             {"/version", "got string, want integer"},
	"total float fen":               {"/total_fen", "got number, want integer"},
	"line amount float fen":         {"/lines/0/amount_fen", "got number, want integer"},
	"price float fen":               {"/products/0/price_fen", "got number, want integer"},
	"limit float fen":               {"/limit_fen", "got number, want integer"},
	"negative fen":                  {"/counters/amount_fen", "minimum"},
	"qty fraction":                  {"/lines/0/qty", "got number, want integer"},
	"time without millis":           {"/settled_at", "does not match pattern"},
	"time with micros":              {"/settled_at", "does not match pattern"},
	"time with offset":              {"/at", "does not match pattern"},
	"time lower z":                  {"/at", "does not match pattern"},
	"time not a date":               {"/at", "is not valid date-time"},
	"time unix":                     {"/at", "got number, want string"},
	"time null (Go zero Time)":      {"/at", "got null, want string"},
	"bad sale status":               {"/status", "must be one of"},
	"status wrong case":             {"/status", "must be one of"},
	"bad buyer kind":                {"/buyer/kind", "must be one of"},
	"bad severity":                  {"/severity", "must be one of"},
	"bad mode":                      {"/mode", "must be one of"},
	"bad command type":              {"/type", "must be one of"},
	"bad error code":                {"/error", "must be one of"},
	"bad product status":            {"/products/0/status", "must be one of"},
	"negative seq":                  {"/seq", "minimum"},
	"zero seq":                      {"/seq", "minimum"},
	"negative ack":                  {"/sales_upto_seq", "minimum"},
	"zero qty":                      {"/lines/0/qty", "minimum"},
	"shelf 0":                       {"/shelves/0/shelf", "minimum"},
	"zero unit weight":              {"/products/0/unit_weight_g", "exclusiveMinimum"},
	"resend from 0":                 {"/from_seq", "minimum"},
	"bad cabinet id":                {"/cabinet_id", "does not match pattern"},
	"long cabinet id":               {"/cabinet_id", "does not match pattern"},
	"empty sale with a line":        {"/lines", "maxItems"},
	"cancelled sale charged":        {"/total_fen", "value must be 0"},
	"exact sale without lines":      {"/lines", "minItems"},
	"ok reply with error":           {"/error", "value must be ''"},
	"refused reply without error":   {"/error", "'not' failed"},
	"state online with null at":     {"/at", "got null, want string"},
	"catalog extra field":           {"", "additional properties 'signature'"},
	"product extra field":           {"/products/0", "additional properties 'discount_fen'"},
	"planogram extra field":         {"/shelves/0", "additional properties 'capacity'"},
	"ack extra field":               {"", "additional properties 'sales'"},
	"command extra field":           {"", "additional properties 'delay_s'"},
	"command field of another type": {"", "invalid propertyName 'staff_id'"},
	"reboot with session":           {"", "invalid propertyName 'session_id'"},
	"unlock buyer extra field":      {"/buyer/phone", "false schema"},
	"envelope v2":                   {"/v", "value must be 1"},
	"envelope other alg":            {"/alg", "value must be 'Ed25519'"},
	"envelope empty kid":            {"/kid", "minLength"},
	"envelope padded payload":       {"/payload", "does not match pattern"},
	"envelope std base64 payload":   {"/payload", "does not match pattern"},
	"envelope payload not JSON":     {"/payload", "mediatype 'application/json'"},
	"envelope short sig":            {"/sig", "does not match pattern"},
	"envelope extra field":          {"", "additional properties 'ts'"},
	"sale nil lines (null)":         {"/lines", "got null, want array"},
	"sale nil evidence (null)":      {"/evidence", "got null, want array"},
	"alarm nil detail (null)":       {"/detail", "got null, want object"},
	"restock nil changes (null)":    {"/changes", "got null, want array"},
	"heartbeat nil shelves (null)":  {"/shelves", "got null, want array"},
	"sale zero closed_at (null)":    {"/closed_at", "got null, want string"},
	"array":                         {"", "got array, want object"},

	"sale posterior 1.5":            {"/posterior", "maximum"},
	"sale posterior negative":       {"/posterior", "minimum"},
	"sale posterior as string":      {"/posterior", "got string, want number"},
	"sale 9 alternatives":           {"/alternatives", "maxItems: got 9, want 8"},
	"sale alternatives as object":   {"/alternatives", "got object, want array"},
	"alternative posterior 1.5":     {"/alternatives/0/posterior", "maximum"},
	"alternative without posterior": {"/alternatives/0", "missing property 'posterior'"},
	"alternative without total":     {"/alternatives/0", "missing property 'total_fen'"},
	"alternative float fen":         {"/alternatives/1/total_fen", "got number, want integer"},
	"alternative negative fen":      {"/alternatives/0/total_fen", "minimum"},
	"alternative moved as string":   {"/alternatives/0/moved", "got string, want boolean"},
	"alternative line qty 0":        {"/alternatives/0/lines/1/qty", "minimum"},
	"alternative line shelf 0":      {"/alternatives/0/lines/0/shelf", "minimum"},
	"alternative line empty sku":    {"/alternatives/0/lines/0/sku", "minLength"},
	"alternative line without sku":  {"/alternatives/2/lines/0", "missing property 'sku'"},
	"alternative nil lines (null)":  {"/alternatives/0/lines", "got null, want array"},
	"lane -0.1":                     {"/shelves/0/lanes/NM-0001", "minimum"},
	"lane 1.5":                      {"/shelves/0/lanes/NM-0007", "maximum"},
	"lane as string":                {"/shelves/0/lanes/NM-0001", "got string, want number"},
	"lanes as list":                 {"/shelves/0/lanes", "got array, want object"},
	"lanes over the cap":            {"/shelves/0/lanes", "maxProperties: got 33, want 32"},
	"lane for an empty sku":         {"*", "invalid propertyName ''"},
	"lint without pass":             {"/lint", "missing property 'pass'"},
	"lint pct over 100":             {"/lint/predicted_exact_pct", "maximum"},
	"lint negative sessions":        {"/lint/sessions", "minimum"},
	"lint nil confusions (null)":    {"/lint/confusions", "got null, want array"},
	"lint confusion pct as string":  {"/lint/confusions/0/pct", "got string, want number"},
	"lint on a command's reply":     {"/cmd_id", "does not match pattern"},
	"lint on a refused planogram":   {"/ok", "value must be true"},
}

func TestInvalidMessages(t *testing.T) {
	tests := []struct {
		name, schema string
		doc          []byte
	}{
		// missing required fields
		{"sale without sale_id", "sale", patch(t, exactSale(), "sale_id", del)},
		{"sale without evidence", "sale", patch(t, exactSale(), "evidence", del)},
		{"sale line without qty", "sale", patch(t, exactSale(), "lines.0.qty", del)},
		{"heartbeat without counters", "heartbeat", patch(t, heartbeat(), "counters", del)},
		{"heartbeat without temp_c", "heartbeat", patch(t, heartbeat(), "temp_c", del)},
		{"state without online", "state", []byte(`{"fw":"1.2.0","at":"2026-03-14T09:26:53.589Z"}`)},
		{"state online without fw", "state", patch(t, msg.State{Online: true, At: ptr(now())})},
		{"reply without at", "reply", patch(t, reply(), "at", del)},
		{"alarm without detail", "alarm", patch(t, alarm(), "detail", del)},
		{"ack without seq", "ack", patch(t, ack(), "sales_upto_seq", del)},
		{"unlock without buyer", "command", patch(t, unlock(), "buyer", del)},
		{"unlock without limit", "command", patch(t, unlock(), "limit_fen", del)},
		{"restock_open without door", "command", func() []byte {
			c := cmd(msg.CmdRestockOpen)
			c.SessionID, c.StaffID = "s-1", "staff-1"
			return marshal(t, c)
		}()},
		{"resend without to_seq", "command", func() []byte {
			c := cmd(msg.CmdResend)
			c.FromSeq = 3
			return marshal(t, c)
		}()},
		{"config with empty settings", "command", patch(t, cmd(msg.CmdConfig), "settings", map[string]any{})},
		{"catalog product without price", "catalog", patch(t, catalog(), "products.0.price_fen", del)},
		{"envelope without sig", "envelope", []byte(`{"v":1,"kid":"k","alg":"Ed25519","payload":"e30"}`)},

		// wrong types
		{"seq as string", "sale", patch(t, exactSale(), "seq", "118")},
		{"qty as string", "sale", patch(t, exactSale(), "lines.0.qty", "2")},
		{"uptime as string", "heartbeat", patch(t, heartbeat(), "uptime_s", "86400")},
		{"grams as string", "heartbeat", patch(t, heartbeat(), "shelves.0.grams", "7012.9")},
		{"ok as string", "reply", patch(t, reply(), "ok", "true")},
		{"detail as string", "alarm", patch(t, alarm(), "detail", "door 1")},
		{"version as string", "catalog", patch(t, catalog(), "version", "42")},

		// money is integer fen
		{"total float fen", "sale", patch(t, exactSale(), "total_fen", raw("59.8"))},
		{"line amount float fen", "sale", patch(t, exactSale(), "lines.0.amount_fen", raw("59.8"))},
		{"price float fen", "catalog", patch(t, catalog(), "products.0.price_fen", raw("29.9"))},
		{"limit float fen", "command", patch(t, unlock(), "limit_fen", raw("200.5"))},
		{"negative fen", "heartbeat", patch(t, heartbeat(), "counters.amount_fen", -1)},
		{"qty fraction", "sale", patch(t, exactSale(), "lines.0.qty", raw("1.5"))},

		// timestamps: RFC 3339, UTC 'Z', milliseconds
		{"time without millis", "sale", patch(t, exactSale(), "settled_at", "2026-03-14T09:26:53Z")},
		{"time with micros", "sale", patch(t, exactSale(), "settled_at", "2026-03-14T09:26:53.589123Z")},
		{"time with offset", "ack", patch(t, ack(), "at", "2026-03-14T17:26:53.589+08:00")},
		{"time lower z", "ack", patch(t, ack(), "at", "2026-03-14T09:26:53.589z")},
		{"time not a date", "reply", patch(t, reply(), "at", "2026-02-30T09:26:53.589Z")},
		{"time unix", "heartbeat", patch(t, heartbeat(), "at", 1773480413)},
		{"time null (Go zero Time)", "alarm", func() []byte { a := alarm(); a.At = msg.Time{}; return marshal(t, a) }()},

		// enums
		{"bad sale status", "sale", patch(t, exactSale(), "status", "partial")},
		{"status wrong case", "sale", patch(t, exactSale(), "status", "Exact")},
		{"bad buyer kind", "sale", patch(t, exactSale(), "buyer.kind", "company")},
		{"bad severity", "alarm", patch(t, alarm(), "severity", "fatal")},
		{"bad mode", "heartbeat", patch(t, heartbeat(), "mode", "sleeping")},
		{"bad command type", "command", patch(t, cmd(msg.CmdReboot), "type", "shutdown")},
		{"bad error code", "reply", patch(t, reply(), "ok", false, "error", "timeout")},
		{"bad product status", "catalog", patch(t, catalog(), "products.0.status", "suspended")},

		// ranges
		{"negative seq", "sale", patch(t, exactSale(), "seq", -1)},
		{"zero seq", "sale", patch(t, exactSale(), "seq", 0)},
		{"negative ack", "ack", patch(t, ack(), "sales_upto_seq", -118)},
		{"zero qty", "sale", patch(t, exactSale(), "lines.0.qty", 0)},
		{"shelf 0", "planogram", patch(t, planogram(), "shelves.0.shelf", 0)},
		{"zero unit weight", "catalog", patch(t, catalog(), "products.0.unit_weight_g", 0)},
		{"resend from 0", "command", func() []byte {
			c := cmd(msg.CmdResend)
			c.ToSeq = 5
			return patch(t, c, "from_seq", 0)
		}()},
		{"bad cabinet id", "sale", patch(t, exactSale(), "cabinet_id", "NM 150102/0007")},
		{"long cabinet id", "planogram", patch(t, planogram(), "cabinet_id", strings.Repeat("A", 65))},

		// cross-field rules
		{"empty sale with a line", "sale", patch(t, exactSale(), "status", "empty")},
		{"cancelled sale charged", "sale", func() []byte {
			s := exactSale()
			s.Status, s.Lines = msg.SaleCancelled, []msg.SaleLine{}
			return marshal(t, s)
		}()},
		{"exact sale without lines", "sale", patch(t, exactSale(), "lines", []any{}, "total_fen", 0)},
		{"ok reply with error", "reply", patch(t, reply(), "error", "busy")},
		{"refused reply without error", "reply", patch(t, reply(), "ok", false)},
		{"state online with null at", "state", []byte(`{"online":true,"fw":"1.2.0","at":null}`)},

		// platform-originated documents are decoded strictly
		{"catalog extra field", "catalog", patch(t, catalog(), "signature", "x")},
		{"product extra field", "catalog", patch(t, catalog(), "products.0.discount_fen", 100)},
		{"planogram extra field", "planogram", patch(t, planogram(), "shelves.0.capacity", 20)},
		{"ack extra field", "ack", patch(t, ack(), "sales", 118)},
		{"command extra field", "command", patch(t, cmd(msg.CmdReboot), "delay_s", 5)},
		{"command field of another type", "command", patch(t, cancelCmd(), "staff_id", "staff-007")},
		{"reboot with session", "command", patch(t, cmd(msg.CmdReboot), "session_id", "s-1")},
		{"unlock buyer extra field", "command", patch(t, unlock(), "buyer.phone", "13800000000")},

		// envelope form
		{"envelope v2", "envelope", envWith(t, "v", 2)},
		{"envelope other alg", "envelope", envWith(t, "alg", "RS256")},
		{"envelope empty kid", "envelope", envWith(t, "kid", "")},
		{"envelope padded payload", "envelope", envWith(t, "payload", "eyJ9fQ==")},
		{"envelope std base64 payload", "envelope", envWith(t, "payload", "eyJhIjoiPz8_In0+/w")},
		{"envelope payload not JSON", "envelope", envWith(t, "payload", "bm90IGpzb24")},
		{"envelope short sig", "envelope", envWith(t, "sig", strings.Repeat("A", 85))},
		{"envelope extra field", "envelope", envWith(t, "ts", "2026-03-14T09:26:53.589Z")},

		// Go zero values that break the contract: the firmware must not emit them.
		{"sale nil lines (null)", "sale", func() []byte {
			s := exactSale()
			s.Status, s.Lines, s.TotalFen = msg.SaleEmpty, nil, 0
			return marshal(t, s)
		}()},
		{"sale nil evidence (null)", "sale", func() []byte { s := exactSale(); s.Evidence = nil; return marshal(t, s) }()},
		{"alarm nil detail (null)", "alarm", func() []byte { a := alarm(); a.Detail = nil; return marshal(t, a) }()},
		{"restock nil changes (null)", "restock", func() []byte { r := restock(); r.Changes = nil; return marshal(t, r) }()},
		{"heartbeat nil shelves (null)", "heartbeat", func() []byte { h := heartbeat(); h.Shelves = nil; return marshal(t, h) }()},
		{"sale zero closed_at (null)", "sale", func() []byte { s := exactSale(); s.ClosedAt = msg.Time{}; return marshal(t, s) }()},
		{"alternative nil lines (null)", "sale", func() []byte {
			s := ambiguousSale()
			s.Alternatives[0].Lines = nil
			return marshal(t, s)
		}()},
		{"lint nil confusions (null)", "reply", func() []byte {
			r := planogramReply()
			r.Lint.Confusions = nil
			return marshal(t, r)
		}()},

		// additions to v1
		{"sale posterior 1.5", "sale", patch(t, ambiguousSale(), "posterior", 1.5)},
		{"sale posterior negative", "sale", patch(t, ambiguousSale(), "posterior", -0.01)},
		{"sale posterior as string", "sale", patch(t, ambiguousSale(), "posterior", "0.62")},
		{"sale 9 alternatives", "sale", func() []byte {
			s := ambiguousSale()
			s.Alternatives = alternatives(msg.MaxAlternatives + 1)
			return marshal(t, s)
		}()},
		{"sale alternatives as object", "sale", patch(t, ambiguousSale(), "alternatives", map[string]any{})},
		{"alternative posterior 1.5", "sale", patch(t, ambiguousSale(), "alternatives.0.posterior", 1.5)},
		{"alternative without posterior", "sale", patch(t, ambiguousSale(), "alternatives.0.posterior", del)},
		{"alternative without total", "sale", patch(t, ambiguousSale(), "alternatives.0.total_fen", del)},
		{"alternative float fen", "sale", patch(t, ambiguousSale(), "alternatives.1.total_fen", raw("65.8"))},
		{"alternative negative fen", "sale", patch(t, ambiguousSale(), "alternatives.0.total_fen", -6280)},
		{"alternative moved as string", "sale", patch(t, ambiguousSale(), "alternatives.0.moved", "true")},
		{"alternative line qty 0", "sale", patch(t, ambiguousSale(), "alternatives.0.lines.1.qty", 0)},
		{"alternative line shelf 0", "sale", patch(t, ambiguousSale(), "alternatives.0.lines.0.shelf", 0)},
		{"alternative line empty sku", "sale", patch(t, ambiguousSale(), "alternatives.0.lines.0.sku", "")},
		{"alternative line without sku", "sale", patch(t, ambiguousSale(), "alternatives.2.lines.0.sku", del)},
		{"lane -0.1", "planogram", patch(t, planogramLanes(), "shelves.0.lanes.NM-0001", -0.1)},
		{"lane 1.5", "planogram", patch(t, planogramLanes(), "shelves.0.lanes.NM-0007", 1.5)},
		{"lane as string", "planogram", patch(t, planogramLanes(), "shelves.0.lanes.NM-0001", "0.2")},
		{"lanes as list", "planogram", patch(t, planogramLanes(), "shelves.0.lanes", []any{0.2, 0.8})},
		{"lanes over the cap", "planogram", func() []byte {
			p := planogramLanes()
			for i := range msg.MaxLanes + 1 {
				p.Shelves[0].Lanes[fmt.Sprintf("NM-%04d", i)] = 0.5
			}
			return marshal(t, p)
		}()},
		{"lane for an empty sku", "planogram", patch(t, planogramLanes(), "shelves.0.lanes", map[string]any{"": 0.5})},
		{"lint without pass", "reply", patch(t, planogramReply(), "lint.pass", del)},
		{"lint pct over 100", "reply", patch(t, planogramReply(), "lint.predicted_exact_pct", 100.5)},
		{"lint negative sessions", "reply", patch(t, planogramReply(), "lint.sessions", -1)},
		{"lint confusion pct as string", "reply", patch(t, planogramReply(), "lint.confusions.0.pct", "4.1")},
		{"lint on a command's reply", "reply", patch(t, planogramReply(), "cmd_id", "c-5d21e8")},
		{"lint on a refused planogram", "reply", patch(t, planogramReply(), "ok", false, "error", msg.ErrBadRequest)},

		// not one JSON document
		{"trailing data", "ack", append(marshal(t, ack()), []byte(` {}`)...)},
		{"not JSON", "ack", []byte(`sales_upto_seq=118`)},
		{"array", "ack", []byte(`[]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.schema, tt.doc)
			if err == nil {
				t.Fatalf("%s validated, want an error:\n%s", tt.schema, tt.doc)
			}
			text := err.Error()
			if !strings.HasPrefix(text, "docs: "+tt.schema+": ") {
				t.Errorf("error %q lacks the docs/schema prefix", text)
			}
			if strings.HasPrefix(tt.name, "not JSON") || tt.name == "trailing data" {
				if !strings.Contains(text, "not a JSON document") {
					t.Errorf("error %q, want not a JSON document", text)
				}
				return
			}
			why, ok := invalidWhy[tt.name]
			if !ok {
				t.Fatalf("no expected reason for %q in invalidWhy", tt.name)
			}
			for _, line := range strings.Split(text, "\n") {
				if (why[0] == "*" || strings.Contains(line, "at '"+why[0]+"': ")) && strings.Contains(line, why[1]) {
					return
				}
			}
			t.Errorf("failed for another reason than %q at %q:\n%s", why[1], why[0], text)
		})
	}
}

func envWith(t testing.TB, key string, v any) []byte {
	t.Helper()
	wire, err := signer(t).Seal(ack())
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(wire, &env); err != nil {
		t.Fatal(err)
	}
	env[key] = v
	return marshal(t, env)
}

func TestValidationErrorIsInspectable(t *testing.T) {
	err := Validate("sale", patch(t, exactSale(), "seq", -1))
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v does not wrap *jsonschema.ValidationError", err)
	}
	if !strings.Contains(err.Error(), "/seq") {
		t.Errorf("error %q does not point at /seq", err)
	}
}

func TestUnknownSchema(t *testing.T) {
	for _, name := range []string{"", "defs", "Sale", "sale.json", "../go", "cmd"} {
		if err := Validate(name, []byte(`{}`)); !errors.Is(err, ErrUnknownSchema) {
			t.Errorf("Validate(%q) = %v, want ErrUnknownSchema", name, err)
		}
	}
	if err := ValidateEnvelope("nope", []byte(`{}`)); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("ValidateEnvelope(nope) = %v, want ErrUnknownSchema", err)
	}
}

func TestValidateEnvelope(t *testing.T) {
	s := signer(t)
	good, err := s.Seal(exactSale())
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateEnvelope("sale", good); err != nil {
		t.Fatal(err)
	}
	// A well-formed envelope around a bad document.
	bad, err := s.SealBytes(patch(t, exactSale(), "total_fen", raw("59.8")))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate("envelope", bad); err != nil {
		t.Fatalf("envelope form should pass: %v", err)
	}
	if err := ValidateEnvelope("sale", bad); err == nil {
		t.Error("ValidateEnvelope accepted a sale with float fen")
	}
	// The document of one message under another's name.
	if err := ValidateEnvelope("heartbeat", good); err == nil {
		t.Error("ValidateEnvelope accepted a sale as a heartbeat")
	}
	for _, name := range []string{"state", "envelope"} {
		if err := ValidateEnvelope(name, good); err == nil {
			t.Errorf("ValidateEnvelope(%q) should refuse: not enveloped", name)
		}
	}
}

func TestConcurrentValidate(t *testing.T) {
	docs := map[string][]byte{
		"sale": marshal(t, exactSale()), "heartbeat": marshal(t, heartbeat()), "ack": marshal(t, ack()),
		"command": marshal(t, unlock()), "catalog": marshal(t, catalog()),
	}
	var wg sync.WaitGroup
	for range 8 {
		for name, doc := range docs {
			wg.Go(func() {
				if err := Validate(name, doc); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
}

// TestProtocolExamples validates the compact JSON snippets of contract v1
// (the shapes docs/contract.md describes), with "…" placeholders replaced
// by concrete values.
func TestProtocolExamples(t *testing.T) {
	s := signer(t)
	payload := []byte(`{"sales_upto_seq": 118, "at": "2026-03-14T09:26:53.589Z"}`)
	wire, err := s.SealBytes(payload)
	if err != nil {
		t.Fatal(err)
	}
	var env msg.Envelope
	if err := json.Unmarshal(wire, &env); err != nil {
		t.Fatal(err)
	}
	envelope := `{"v":1,"kid":"plat-2026a","alg":"Ed25519","payload":"` + env.Payload + `","sig":"` + env.Sig + `"}`

	tests := []struct{ schema, doc string }{
		{"state", `{"online":true,"fw":"1.2.0","at":"2026-03-14T09:26:53.589Z"}`},
		{"state", `{"online":false}`},
		{"envelope", envelope},
		{"ack", string(payload)},
		{"sale", `{"sale_id":"01JD8Y3M4X5K2Q7R9S0T1V2W3X", "seq":118, "cabinet_id":"NM-150102-0007", "session_id":"s-7f3a9c",
 "buyer":{"ref":"u-20391","kind":"person","org":""},
 "opened_at":"2026-03-14T09:25:23.589Z","closed_at":"2026-03-14T09:26:43.589Z","settled_at":"2026-03-14T09:26:53.589Z",
 "status":"exact",
 "lines":[{"sku":"NM-0001","cert_no":"NMLV-2025-00017","name":"Potato flour","supplier_id":"sup-118","supplier":"Wuchuan Cooperative",
           "origin_code":"150121","shelf":1,"qty":2,"unit_price_fen":2990,"amount_fen":5980}],
 "total_fen":5980,
 "evidence":[{"shelf":1,"before_g":8012.4,"after_g":7012.9,"delta_g":-999.5,"residual_g":0.5}],
 "catalog_version":42,"fw":"1.2.0"}`},
		{"catalog", `{"version": 42, "issued_at": "2026-03-13T00:00:00.000Z", "region": "150000", "products": [
{"sku":"NM-0001","cert_no":"NMLV-2025-00017","name":"Potato flour","supplier_id":"sup-118","supplier":"Wuchuan Cooperative","origin_code":"150121",
"origin":"Tumed Left Banner","unit_weight_g":500.0,"weight_tol_g":6.0,"price_fen":2990,"valid_until":"2026-12-31T16:00:00.000Z",
"status":"active"}]}`},
		{"planogram", `{"version":7,"cabinet_id":"NM-150102-0007","shelves":[{"shelf":1,"door":1,
"skus":["NM-0001","NM-0007"]}]}`},
		{"command", `{"id":"c-5d21e8","type":"reboot","cabinet_id":"NM-150102-0007",
"issued_at":"2026-03-14T09:26:53.589Z","expires_at":"2026-03-14T09:27:23.589Z"}`},
		{"reply", `{"cmd_id":"c-5d21e8","ok":true,"error":"","detail":"","at":"2026-03-14T09:26:53.589Z"}`},
		{"restock", `{"restock_id":"r-000031","session_id":"s-81bb02","staff_id":"staff-007","opened_at":"2026-03-14T09:21:53.589Z","closed_at":"2026-03-14T09:26:53.589Z",
"changes":[{"shelf":1,"sku":"NM-0001","delta_qty":12}],"evidence":[{"shelf":1,"before_g":1010.2,"after_g":7010.8,"delta_g":6000.6,"residual_g":0.6}]}`},
		{"alarm", `{"alarm_id":"a-000412","kind":"door_open_too_long","severity":"warning","at":"2026-03-14T09:26:53.589Z","cleared":false,
"detail":{"door":1,"open_s":180}}`},
		{"heartbeat", `{"at":"2026-03-14T09:26:53.589Z","uptime_s":86400,"fw":"1.2.0","mode":
"idle","door":"closed","shelves":[{"shelf":1,"ok":true,"grams":7012.9}],
"temp_c":4.2,"outbox_depth":0,"catalog_version":42,"planogram_version":7,
"counters":{"sales":118,"last_seq":118,"amount_fen":352310}}`},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			if err := Validate(tt.schema, []byte(tt.doc)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Every alarm kind of the original v1 list is accepted.
	for _, kind := range []string{msg.AlarmDoorOpenTooLong, msg.AlarmDoorForced, msg.AlarmWeightWhileLocked,
		msg.AlarmUnknownObject, msg.AlarmScaleFault, msg.AlarmLockFault, msg.AlarmTemperature,
		msg.AlarmRevokedInStock, msg.AlarmPowerRestored, msg.AlarmStorageFault, msg.AlarmBadMessage} {
		a := alarm()
		a.Kind = kind
		if err := Validate("alarm", marshal(t, a)); err != nil {
			t.Errorf("kind %s: %v", kind, err)
		}
	}
	// And every reply error code.
	for _, code := range []string{msg.ErrBadRequest, msg.ErrWrongCabinet, msg.ErrExpired, msg.ErrReplayed,
		msg.ErrStaleQR, msg.ErrBusy, msg.ErrOutOfService, msg.ErrNoCatalog, msg.ErrLockFault, msg.ErrUnknownSession} {
		r := reply()
		r.OK, r.Error = false, code
		if err := Validate("reply", marshal(t, r)); err != nil {
			t.Errorf("error %s: %v", code, err)
		}
	}
}

// ---- asyncapi.yaml ----

func readAsyncAPI(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(b, '\t') {
		t.Fatal("asyncapi.yaml contains a tab; YAML indentation must be spaces")
	}
	return string(b)
}

var (
	fileRefRE  = regexp.MustCompile(`\$ref:\s*'?\./schemas/([^'"\s#]+)'?`)
	localRefRE = regexp.MustCompile(`\$ref:\s*'#(/[^']*)'`)
)

func TestAsyncAPISchemaRefs(t *testing.T) {
	src := readAsyncAPI(t)
	if !strings.Contains(src, "\nasyncapi: 3.0.0\n") {
		t.Error("asyncapi.yaml does not declare asyncapi: 3.0.0")
	}
	refs := fileRefRE.FindAllStringSubmatch(src, -1)
	if len(refs) == 0 {
		t.Fatal("no $ref to ./schemas/ found")
	}
	seen := map[string]bool{}
	for _, m := range refs {
		file := m[1]
		seen[strings.TrimSuffix(file, ".json")] = true
		if _, err := schemaFS.ReadFile("schemas/" + file); err != nil {
			t.Errorf("$ref ./schemas/%s: %v", file, err)
		}
		if _, err := os.Stat("schemas/" + file); err != nil {
			t.Errorf("$ref ./schemas/%s: %v", file, err)
		}
	}
	for _, name := range Names() {
		if !seen[name] {
			t.Errorf("schema %s.json is not referenced from asyncapi.yaml", name)
		}
	}
}

// yamlKeyPaths returns the JSON-pointer-like paths of every mapping key in
// a block-style YAML document ("/channels/sale/messages/sale"). List items
// appear as "-". Block scalars are skipped. Enough for our own file.
func yamlKeyPaths(src string) map[string]bool {
	type frame struct {
		indent int
		key    string
	}
	keyRE := regexp.MustCompile(`^([^\s:'"#-][^\s:]*):(?:\s|$)`)
	var stack []frame
	paths := map[string]bool{}
	blockIndent := -1
	push := func(indent int, key string) {
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, frame{indent, key})
		var b strings.Builder
		for _, f := range stack {
			b.WriteString("/" + f.key)
		}
		paths[b.String()] = true
	}
	for _, line := range strings.Split(src, "\n") {
		text := strings.TrimLeft(line, " ")
		indent := len(line) - len(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if blockIndent >= 0 {
			if indent > blockIndent {
				continue
			}
			blockIndent = -1
		}
		if rest, ok := strings.CutPrefix(text, "- "); ok {
			push(indent, "-")
			indent += 2
			text = rest
		}
		m := keyRE.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		push(indent, m[1])
		if v := strings.TrimSpace(text[len(m[0]):]); v == "|" || v == ">" {
			blockIndent = indent
		}
	}
	return paths
}

func TestAsyncAPILocalRefs(t *testing.T) {
	src := readAsyncAPI(t)
	paths := yamlKeyPaths(src)
	for _, want := range []string{"/servers/production", "/servers/simulator", "/channels/sale",
		"/operations/sendSale/bindings/mqtt/qos", "/components/messages/ack/payload/schema"} {
		if !paths[want] {
			t.Fatalf("key path scanner did not find %s; fix the scanner", want)
		}
	}
	refs := localRefRE.FindAllStringSubmatch(src, -1)
	if len(refs) < 30 {
		t.Fatalf("found only %d local $refs", len(refs))
	}
	for _, m := range refs {
		if !paths[m[1]] {
			t.Errorf("$ref '#%s' does not resolve inside asyncapi.yaml", m[1])
		}
	}
	// Every channel has a send or receive operation.
	for p := range paths {
		if ch, ok := strings.CutPrefix(p, "/channels/"); ok && !strings.Contains(ch, "/") {
			if !strings.Contains(src, "$ref: '#/channels/"+ch+"'") {
				t.Errorf("channel %s has no operation", ch)
			}
		}
	}
}

// exampleKeyPublic is the public key of the example key in contract.md:
// Ed25519 from the seed SHA-256("bangfu contract v1 example key").
const exampleKeyPublic = "snBEk2cgcvcgtHl8DE9MLVf2EV2Rpn6oVgS-sf_Kpkw"

// An example is name, summary and payload lines, then, for all but a
// message's first example, its own x-document-example; the first one's is
// on the message.
var (
	exampleRE    = regexp.MustCompile(`(?m)^\s+- name: ([a-z]+)-[a-z0-9-]+\n\s+summary: [^\n]*\n\s+payload: (\{[^\n]*\})$(?:\n\s+x-document-example: (\{[^\n]*\})$)?`)
	docExampleRE = regexp.MustCompile(`(?m)^\s+x-document-example: (\{[^\n]*\})$`)
)

// goTypes are the wire types of the signed messages, for strict decoding
// of the examples: a documented field the firmware does not know fails.
var goTypes = map[string]func() any{
	"heartbeat": func() any { return new(msg.Heartbeat) }, "sale": func() any { return new(msg.Sale) },
	"restock": func() any { return new(msg.Restock) }, "alarm": func() any { return new(msg.Alarm) },
	"reply": func() any { return new(msg.Reply) }, "catalog": func() any { return new(msg.Catalog) },
	"planogram": func() any { return new(msg.Planogram) }, "command": func() any { return new(msg.Command) },
	"ack": func() any { return new(msg.Ack) },
}

func TestAsyncAPIExamples(t *testing.T) {
	seed := sha256.Sum256([]byte("bangfu contract v1 example key"))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	if got := msg.EncodeKey(pub); got != exampleKeyPublic {
		t.Fatalf("example key = %s, want %s", got, exampleKeyPublic)
	}
	guide, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(guide, []byte(exampleKeyPublic)) {
		t.Error("contract.md does not publish the example public key")
	}

	src := readAsyncAPI(t)
	docExamples := map[string]bool{}
	for _, m := range docExampleRE.FindAllStringSubmatch(src, -1) {
		docExamples[m[1]] = true
	}
	examples := exampleRE.FindAllStringSubmatch(src, -1)
	covered := map[string]bool{}
	signed := 0
	for _, m := range examples {
		name, payload, own := m[1], []byte(m[2]), m[3]
		if covered[name] && own == "" && name != "state" { // state is not signed: its payload is the document
			t.Errorf("a further example of %s has no x-document-example of its own", name)
		}
		covered[name] = true
		if name != "state" {
			signed++
		}
		t.Run(name, func(t *testing.T) {
			if name == "state" {
				if err := Validate("state", payload); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := ValidateEnvelope(name, payload); err != nil {
				t.Fatal(err)
			}
			doc, kid, err := msg.KeyRing{"example-2026": pub}.Open(payload)
			if err != nil {
				t.Fatalf("example envelope does not verify with the example key: %v (kid %q)", err, kid)
			}
			if own != "" && string(doc) != own {
				t.Errorf("decoded payload is not the example's x-document-example:\n%s", doc)
			}
			if !docExamples[string(doc)] {
				t.Errorf("decoded payload is not given as an x-document-example:\n%s", doc)
			}
			if err := msg.DecodeStrict(doc, goTypes[name]()); err != nil {
				t.Errorf("the firmware's wire type refuses the example: %v", err)
			}
		})
	}
	for _, name := range Names() {
		if name != "envelope" && !covered[name] {
			t.Errorf("no example for message %s in asyncapi.yaml", name)
		}
	}
	if len(docExamples) != signed {
		t.Errorf("%d x-document-examples, want one per signed example (%d)", len(docExamples), signed)
	}
}

// ---- contract.md ----

// guideExampleRE finds the JSON examples of contract.md that are whole
// documents: a ```json block right after a "<!-- schema: name -->" line.
var guideExampleRE = regexp.MustCompile("(?s)<!-- schema: ([a-z]+) -->\n```json\n(.*?)\n```")

func TestContractExamples(t *testing.T) {
	guide, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := guideExampleRE.FindAllSubmatch(guide, -1)
	seen := map[string]bool{}
	for _, m := range examples {
		name, doc := string(m[1]), m[2]
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			if err := Validate(name, doc); err != nil {
				t.Fatalf("%s\n%v", doc, err)
			}
			v := goTypes[name]()
			if err := msg.DecodeStrict(doc, v); err != nil {
				t.Fatalf("the firmware's wire type refuses the example: %v", err)
			}
			if p, ok := v.(*msg.Planogram); ok {
				for _, sh := range p.Shelves {
					if err := sh.ValidateLanes(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	// One example for each addition to v1.
	for _, name := range []string{"sale", "reply", "planogram", "alarm"} {
		if !seen[name] {
			t.Errorf("contract.md has no %s example", name)
		}
	}
}

// allAlarmKinds are the alarm kinds the firmware raises.
var allAlarmKinds = []string{msg.AlarmDoorOpenTooLong, msg.AlarmDoorForced, msg.AlarmWeightWhileLocked,
	msg.AlarmUnknownObject, msg.AlarmScaleFault, msg.AlarmLockFault, msg.AlarmTemperature,
	msg.AlarmRevokedInStock, msg.AlarmPowerRestored, msg.AlarmStorageFault, msg.AlarmBadMessage,
	msg.AlarmStockMismatch}

// Every alarm kind is accepted, listed in alarm.json and in the alarm table
// of contract.md.
func TestAlarmKindsDocumented(t *testing.T) {
	guide, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	var sch struct {
		Properties struct {
			Kind struct {
				Description string   `json:"description"`
				Examples    []string `json:"examples"`
			} `json:"kind"`
		} `json:"properties"`
	}
	b, err := schemaFS.ReadFile("schemas/alarm.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sch); err != nil {
		t.Fatal(err)
	}
	for _, kind := range allAlarmKinds {
		a := alarm()
		a.Kind = kind
		if err := Validate("alarm", marshal(t, a)); err != nil {
			t.Errorf("kind %s: %v", kind, err)
		}
		if !slices.Contains(sch.Properties.Kind.Examples, kind) || !strings.Contains(sch.Properties.Kind.Description, kind) {
			t.Errorf("alarm.json does not list kind %s", kind)
		}
		if !bytes.Contains(guide, []byte("\n| `"+kind+"` |")) {
			t.Errorf("contract.md's alarm table has no row for %s", kind)
		}
	}
	if n := len(sch.Properties.Kind.Examples); n != len(allAlarmKinds) {
		t.Errorf("alarm.json lists %d kinds, the firmware has %d", n, len(allAlarmKinds))
	}
}

// The schemas' caps on the additions are the ones telemetry/msg enforces or
// keeps to.
func TestCapsMatchMsg(t *testing.T) {
	load := func(name string) map[string]any {
		t.Helper()
		b, err := schemaFS.ReadFile("schemas/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	at := func(v any, path ...string) any {
		t.Helper()
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("no %v in the schema", path)
			}
			v = m[k]
		}
		return v
	}
	if got := at(load("sale"), "properties", "alternatives", "maxItems"); got != float64(msg.MaxAlternatives) {
		t.Errorf("sale.json alternatives maxItems = %v, msg.MaxAlternatives = %d", got, msg.MaxAlternatives)
	}
	if got := at(load("planogram"), "properties", "shelves", "items", "properties", "lanes", "maxProperties"); got != float64(msg.MaxLanes) {
		t.Errorf("planogram.json lanes maxProperties = %v, msg.MaxLanes = %d", got, msg.MaxLanes)
	}
	guide, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{fmt.Sprintf("never more than %d", msg.MaxAlternatives), fmt.Sprintf("more than %d lanes", msg.MaxLanes)} {
		if !bytes.Contains(guide, []byte(want)) {
			t.Errorf("contract.md does not say %q", want)
		}
	}
}
