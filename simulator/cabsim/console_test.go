package cabsim

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/bangfu/cabinet/simulator/platform"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// The web console's browser tests drive the page at the simulator's address
// with a real headless Chromium (Debian's package "chromium"), through
// chromedp. BANGFU_CHROMIUM names another binary; BANGFU_CONSOLE_SHOTS=DIR
// saves screenshots of the page there, for a person to look at.

// chromiumPath is the browser the console tests start. A missing browser
// fails the tests (CI must install it); only a -short run skips them.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("BANGFU_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium" // Debian's package chromium
	}
	if _, err := os.Stat(p); err != nil {
		if testing.Short() {
			t.Skipf("no Chromium at %s (-short): %v", p, err)
		}
		t.Fatalf("the web console's browser tests need Chromium: apt-get install chromium (or set BANGFU_CHROMIUM to a Chromium binary): %v", err)
	}
	return p
}

// console is the simulator's HTTP server and one headless Chromium.
type console struct {
	t       *testing.T
	s       *Sim
	srv     *httptest.Server
	browser context.Context // the first tab; owns the browser process
	tab     context.Context // the tab the test drives
}

// newConsole serves the simulation's HTTP API and starts Chromium (exe, from
// chromiumPath) on it.
func newConsole(t *testing.T, s *Sim, exe string) *console {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, _ := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(bctx, 15*time.Second)
		defer cancel()
		chromedp.Cancel(ctx) // closes the browser
		allocCancel()        // and waits for its process
	})
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium %s: %v", exe, err)
	}
	return &console{t: t, s: s, srv: srv, browser: bctx, tab: bctx}
}

// consoleOn starts a simulator with options o, waits until its first
// cabinet is ready (a harness of deadline d) and opens a console on it.
func consoleOn(t *testing.T, o Options, d time.Duration) (*Sim, string, *harness, *console) {
	t.Helper()
	exe := chromiumPath(t)
	s := startSim(t, o)
	id := s.Cabinets()[0].ID
	h := newHarness(t, s, id, d)
	h.waitReady()
	return s, id, h, newConsole(t, s, exe)
}

// newTab opens another tab of the same browser.
func (c *console) newTab() *console {
	ctx, cancel := chromedp.NewContext(c.browser)
	c.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		c.t.Fatalf("new tab: %v", err)
	}
	n := *c
	n.tab = ctx
	return &n
}

// do runs steps on the tab within d; on failure it reports what the page
// shows.
func (c *console) do(what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.tab, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("%s: %v\npage shows:\n%s", what, err, c.pageText())
	}
}

// until waits, within d, for a JavaScript predicate on the page.
func (c *console) until(what string, d time.Duration, js string) {
	c.t.Helper()
	c.do(what, d+5*time.Second, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[any](js, chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(d))(ctx, t)
		return chromedp.Void{}, err
	})
}

// eval evaluates an expression on the page.
func eval[T any](c *console, js string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.tab, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		c.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// pageText is what the page shows, for failure messages.
func (c *console) pageText() string {
	ctx, cancel := context.WithTimeout(c.tab, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 4000) : ""`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return s
}

// shot saves a full-page screenshot when BANGFU_CONSOLE_SHOTS names a
// directory.
func (c *console) shot(name string) {
	dir := os.Getenv("BANGFU_CONSOLE_SHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(c.tab, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
	if err != nil {
		c.t.Logf("screenshot %s: %v", name, err)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fenText is the console's way of writing an amount: ¥12.34.
func fenText(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, fen/100, fen%100)
}

// TestConsole drives the web console in a headless Chromium the way a
// person would: a refused action shows the API's error, a purchase made by
// clicks shows up as a sale with its product's name and amount, the page
// offers the county sales form for download, and the page fits a phone.
func TestConsole(t *testing.T) {
	s, id, h, c := consoleOn(t, Options{Seed: 51}, 3*time.Minute)
	c.do("load the console", 30*time.Second,
		chromedp.Navigate(c.srv.URL),
		chromedp.WaitVisible(chromedp.CSS(`#cab-badges [data-mode="idle"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#door-1-state[data-locked="true"]`)))
	if got := eval[string](c, `document.querySelector('#cab-id').textContent`); got != id {
		t.Fatalf("the console shows cabinet %q, want %q", got, id)
	}
	if !eval[bool](c, `document.querySelector('#scan-door-label').hidden`) {
		t.Fatal("a cabinet of one door shows the door picker")
	}
	c.shot("console-start.png")

	t.Run("error_shown", func(t *testing.T) {
		c.t = t
		c.do("open the locked door", 15*time.Second,
			chromedp.Click(chromedp.CSS(`#doors button[data-act="open"][data-door="1"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#error`)))
		msg := eval[string](c, `document.querySelector('#error-text').textContent`)
		if !strings.Contains(msg, "开门失败") || !strings.Contains(msg, "door is locked") {
			t.Fatalf("error area shows %q, want the API's refusal (door is locked)", msg)
		}
		if v, _ := s.View(id); v.Doors[0].Open {
			t.Fatal("the locked door opened")
		}
		c.shot("console-error.png")
		c.do("dismiss the error", 10*time.Second, chromedp.Click(chromedp.CSS(`#error-close`)),
			chromedp.WaitNotVisible(chromedp.CSS(`#error`)))
	})

	// The first SKU on shelf 1 that the catalog knows.
	cat, ok := s.Platform.Catalog()
	if !ok {
		t.Fatal("the platform has no catalog")
	}
	v, _ := s.View(id)
	var shelf, units int
	var prod msg.Product
	for _, sh := range v.Shelves {
		keys := make([]string, 0, len(sh.Items))
		for k := range sh.Items {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, sku := range keys {
			i := slices.IndexFunc(cat.Products, func(p msg.Product) bool { return p.SKU == sku })
			if i >= 0 && sh.Items[sku] > 0 && shelf == 0 {
				shelf, units, prod = sh.Shelf, sh.Items[sku], cat.Products[i]
			}
		}
	}
	if shelf == 0 {
		t.Fatalf("no catalog product on the shelves: %+v", v.Shelves)
	}

	t.Run("purchase_by_clicks", func(t *testing.T) {
		c.t = t
		take := fmt.Sprintf(`#shelves button[data-act="take"][data-shelf="%d"][data-sku=%s]`, shelf, jsString(prod.SKU))
		c.do("scan the QR code", 20*time.Second,
			chromedp.Click(chromedp.CSS(`#btn-scan`)),
			chromedp.WaitVisible(chromedp.CSS(`#door-1-state[data-locked="false"]`)))
		c.do("open the door", 20*time.Second,
			chromedp.Click(chromedp.CSS(`#doors button[data-act="open"][data-door="1"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#door-1-state[data-open="true"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#cab-badges [data-session="door_open"]`)))
		c.do("take a unit", 10*time.Second, chromedp.Click(chromedp.CSS(take)))
		c.until("the shelf to show one unit fewer", 10*time.Second, fmt.Sprintf(
			`(document.querySelector('.sku[data-shelf="%d"][data-sku=%s] b') || {}).textContent === %s`,
			shelf, jsString(prod.SKU), jsString(fmt.Sprint(units-1))))
		c.do("close the door", 10*time.Second,
			chromedp.Click(chromedp.CSS(`#doors button[data-act="close"][data-door="1"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#door-1-state[data-open="false"]`)))
		amount := fenText(prod.PriceFen)
		c.until("the sale in the sales table", 45*time.Second, fmt.Sprintf(
			`[...document.querySelectorAll('#sales tbody tr[data-sale]')].some(r =>
				r.querySelector('.goods').textContent.includes(%s + ' ×1') && r.querySelector('.amount').textContent === %s &&
				r.querySelector('[data-status="exact"]') !== null)`, jsString(prod.Name), jsString(amount)))
		recs := h.sales()
		if len(recs) != 1 || recs[0].Sale.TotalFen != prod.PriceFen || len(recs[0].Sale.Lines) != 1 || recs[0].Sale.Lines[0].SKU != prod.SKU {
			t.Fatalf("platform sales %+v, want one of %s at %d fen", recs, prod.SKU, prod.PriceFen)
		}
		if !eval[bool](c, `document.querySelector('#error').hidden`) {
			t.Fatalf("an error shows after the purchase: %s", eval[string](c, `document.querySelector('#error-text').textContent`))
		}
		c.shot("console-sale.png")
	})

	t.Run("report_download", func(t *testing.T) {
		c.t = t
		href := eval[string](c, `document.querySelector('#report-csv').href`)
		u, err := url.Parse(href)
		if err != nil || u.Path != "/api/platform/report" || u.Query().Get("format") != "csv" {
			t.Fatalf("the CSV link is %q", href)
		}
		if x := eval[string](c, `document.querySelector('#report-xlsx').href`); !strings.Contains(x, "format=xlsx") {
			t.Fatalf("the XLSX link is %q", x)
		}
		// Fetched as the link says…
		resp, err := http.Get(href)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", href, resp.StatusCode, err)
		}
		checkReportCSV(t, data, prod.Name)

		// …and downloaded by a click.
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(c.tab, 30*time.Second)
		defer cancel()
		if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true)}); err != nil {
			t.Fatalf("download behaviour: %v", err)
		}
		progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
		c.do("click the CSV link", 10*time.Second, chromedp.Click(chromedp.CSS(`#report-csv`)))
		var guid string
		for ev, err := range progress {
			if err != nil {
				t.Fatalf("waiting for the download: %v\npage shows:\n%s", err, c.pageText())
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				guid = ev.GUID
				break
			}
			if ev.State == browser.DownloadProgressStateCanceled {
				t.Fatalf("the download was cancelled")
			}
		}
		data, err = os.ReadFile(filepath.Join(dir, guid))
		if err != nil {
			t.Fatal(err)
		}
		checkReportCSV(t, data, prod.Name)

		// A window the API refuses (from after to) shows its error, and the
		// links carry the window and the cabinet.
		eval[bool](c, fmt.Sprintf(`(() => {
			const set = (id, v) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('change')); };
			set('rep-from', '2026-12-05T00:00'); set('rep-to', '2026-12-04T00:00'); set('rep-cab', %s);
			return true; })()`, jsString(id)))
		href = eval[string](c, `document.querySelector('#report-csv').href`)
		u, err = url.Parse(href)
		if err != nil || u.Query().Get("from") != "2026-12-05T00:00:00+08:00" || u.Query().Get("to") != "2026-12-04T00:00:00+08:00" ||
			u.Query().Get("cabinet") != id {
			t.Fatalf("the CSV link with a window is %q", href)
		}
		c.do("click the CSV link with a bad window", 10*time.Second,
			chromedp.Click(chromedp.CSS(`#report-csv`)),
			chromedp.WaitVisible(chromedp.CSS(`#error`)))
		if msg := eval[string](c, `document.querySelector('#error-text').textContent`); !strings.Contains(msg, "from must be before to") {
			t.Fatalf("error area shows %q, want the API's refusal of the window", msg)
		}
		eval[bool](c, `(() => { for (const id of ['rep-from', 'rep-to', 'rep-cab']) { const e = document.getElementById(id);
			e.value = ''; e.dispatchEvent(new Event('change')); } document.getElementById('error-close').click(); return true; })()`)
	})

	t.Run("alarms_newest_first", func(t *testing.T) {
		c.t = t
		c.do("force the door", 15*time.Second,
			chromedp.Click(chromedp.CSS(`#doors button[data-act="force"][data-door="1"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#door-1-state[data-open="true"]`)))
		c.until("the forced door's alarm on top", 20*time.Second,
			`(() => { const r = document.querySelector('#alarms tbody tr[data-alarm]');
				return r !== null && r.textContent.includes('门被强行打开') && r.querySelector('[data-severity="critical"]') !== null &&
					r.textContent.includes('严重'); })()`)
		if n := eval[int](c, `document.querySelectorAll('#alarms tbody tr[data-alarm]').length`); n < 2 {
			t.Fatalf("%d alarms on the page, want the power_restored of the start too", n)
		}
		c.do("close the door", 10*time.Second,
			chromedp.Click(chromedp.CSS(`#doors button[data-act="close"][data-door="1"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#door-1-state[data-open="false"]`)))
	})

	t.Run("phone_layout", func(t *testing.T) {
		c.t = t
		p := c.newTab()
		p.do("load the console at 390 px", 30*time.Second,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
			chromedp.Navigate(c.srv.URL),
			chromedp.WaitVisible(chromedp.CSS(`#cab-badges [data-mode]`)),
			chromedp.WaitVisible(chromedp.CSS(`#sales tbody tr[data-sale]`)))
		p.until("the display image", 10*time.Second, `document.querySelector('#display').naturalWidth > 0`)
		if w := eval[int](p, `window.innerWidth`); w != 390 {
			t.Fatalf("window.innerWidth %d, want 390", w)
		}
		var wide struct {
			Doc, Body int
			Over      []string
		}
		wide = eval[struct {
			Doc, Body int
			Over      []string
		}](p, `(() => {
			const over = [];
			for (const el of document.querySelectorAll('body *')) {
				if (el.closest('.scroll')) continue;
				const r = el.getBoundingClientRect();
				if (r.width > 0 && (r.right > 390.5 || r.left < -0.5)) over.push(el.tagName + (el.id ? '#' + el.id : '') + '.' + el.className);
			}
			return {Doc: document.documentElement.scrollWidth, Body: document.body.scrollWidth, Over: over.slice(0, 10)};
		})()`)
		if wide.Doc > 390 || wide.Body > 390 || len(wide.Over) > 0 {
			t.Fatalf("at 390 px the page is %d px wide (body %d); elements past the edge: %v", wide.Doc, wide.Body, wide.Over)
		}
		p.shot("console-phone.png")
	})
}

// checkReportCSV checks the county sales form: a byte-order mark, the header
// row, and a row naming the product.
func checkReportCSV(t *testing.T, data []byte, product string) {
	t.Helper()
	rest, ok := bytes.CutPrefix(data, []byte("\xef\xbb\xbf"))
	if !ok {
		t.Fatalf("the report has no byte-order mark: %.80q", data)
	}
	rows, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("report %q: %v", data, err)
	}
	if !reflect.DeepEqual(rows[0], platform.ReportHeader) || rows[0][0] != "序号" || rows[0][1] != "产品名称" {
		t.Fatalf("report header %q, want %q", rows[0], platform.ReportHeader)
	}
	if rows[1][1] != product {
		t.Fatalf("report row %q, want the product %s", rows[1], product)
	}
}

// TestConsoleReview settles a flagged sale through the console: the
// ambiguous-basket scenario leaves one, the sales table offers its review,
// and the reviewer's choice reaches the platform's books.
func TestConsoleReview(t *testing.T) {
	exe := chromiumPath(t)
	sc, err := LoadScenario(filepath.Join("..", "scenarios", "ambiguous-basket.json"))
	must(t, err)
	s := startSim(t, sc.Apply(Options{DataDir: t.TempDir()}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if fails := s.RunScenario(ctx, sc, &out); len(fails) > 0 {
		t.Fatalf("scenario failed:\n%s", out.String())
	}
	id := s.Cabinets()[0].ID
	must(t, s.Platform.WaitBooks(ctx, id, 1))
	recs := s.Platform.SalesRecords()
	if len(recs) != 1 || recs[0].Sale.Status != msg.SaleAmbiguous {
		t.Fatalf("sales %+v", recs)
	}
	sale := recs[0].Sale
	// The truth, two small packs, if the cabinet offered it; else accept.
	choice, want := `input[value="accept"]`, "accept"
	for i, alt := range sale.Alternatives {
		if reflect.DeepEqual(alt.Lines, []msg.AltLine{{Shelf: 3, SKU: "CQ-0303", Qty: 2}}) {
			choice, want = fmt.Sprintf(`input[value="alt-%d"]`, i), "recharge"
		}
	}

	c := newConsole(t, s, exe)
	row := fmt.Sprintf(`#sales tbody tr.flagged[data-sale=%s]`, jsString(sale.SaleID))
	c.do("open the review", 30*time.Second,
		chromedp.Navigate(c.srv.URL),
		chromedp.WaitVisible(chromedp.CSS(row+` [data-status="ambiguous"]`)),
		chromedp.Click(chromedp.CSS(row+` button[data-review]`)),
		chromedp.WaitVisible(chromedp.CSS(`#review-form`)))
	if n := eval[int](c, `document.querySelectorAll('#review-form input[name="decision"]').length`); n != 1+len(sale.Alternatives) {
		t.Fatalf("the review offers %d choices, want accept and %d alternatives", n, len(sale.Alternatives))
	}
	// Without a reviewer the console refuses.
	if eval[string](c, `document.querySelector('#reviewer').value = ''`) != "" {
		t.Fatal("cannot clear the reviewer")
	}
	c.do("submit without a reviewer", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#review-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#error`)))
	if msg := eval[string](c, `document.querySelector('#error-text').textContent`); !strings.Contains(msg, "复核人") {
		t.Fatalf("error area shows %q, want the missing reviewer", msg)
	}
	c.shot("console-review.png")
	c.do("review", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#review-form `+choice)),
		chromedp.SendKeys(chromedp.CSS(`#reviewer`), "li.wei"),
		chromedp.Click(chromedp.CSS(`#review-submit`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#review`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#sales tbody tr[data-sale=%s] [data-status="reviewed"]`, jsString(sale.SaleID)))))
	rec, ok := reviewOf(s, sale.SaleID)
	if !ok || rec.Review == nil || rec.Review.Reviewer != "li.wei" || rec.Review.Decision != want {
		t.Fatalf("after the review: %+v (found %v), want %s by li.wei", rec, ok, want)
	}
	if n := eval[int](c, `document.querySelectorAll('#sales tbody tr.flagged').length`); n != 0 {
		t.Fatalf("%d sales still flagged on the page", n)
	}
	// The amount shown is what the sale is settled at; a recharge that
	// changes it keeps the cabinet's amount, struck out, beside it.
	amount := eval[string](c, fmt.Sprintf(`document.querySelector('#sales tbody tr[data-sale=%s] .amount').innerText`, jsString(sale.SaleID)))
	if settled := yuanText(rec.Review.TotalFen); !strings.HasSuffix(strings.TrimSpace(amount), settled) {
		t.Fatalf("amount cell %q, want it to end with the settled %s", amount, settled)
	}
	if rec.Review.TotalFen != sale.TotalFen {
		if was := yuanText(sale.TotalFen); !strings.HasPrefix(strings.TrimSpace(amount), was) {
			t.Fatalf("amount cell %q, want the cabinet's %s struck out before the settled amount", amount, was)
		}
	}
	// After a reload the page learns the review from the sales API.
	c.do("reload", 20*time.Second,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#sales tbody tr[data-sale=%s] [data-status="reviewed"]`, jsString(sale.SaleID)))))
	if again := eval[string](c, fmt.Sprintf(`document.querySelector('#sales tbody tr[data-sale=%s] .amount').innerText`, jsString(sale.SaleID))); again != amount {
		t.Fatalf("after a reload the amount cell shows %q, before %q", again, amount)
	}
}

// yuanText is fen as the console writes it, ¥12.34.
func yuanText(fen int64) string { return fmt.Sprintf("¥%d.%02d", fen/100, fen%100) }

// reviewOf is the platform's record of a sale.
func reviewOf(s *Sim, saleID string) (platform.SaleRecord, bool) {
	for _, r := range s.Platform.SalesRecords() {
		if r.Sale.SaleID == saleID {
			return r, true
		}
	}
	return platform.SaleRecord{}, false
}

// On a cabinet of two doors the console lets the shopper pick the door to
// unlock: a scan for door 2 unlocks door 2 and leaves door 1 locked. On a
// cabinet of one door (TestConsole) the picker stays hidden.
func TestConsoleScanPicksDoor(t *testing.T) {
	s, id, _, c := consoleOn(t, Options{Seed: 13, StockFile: writeFile(t, "stock.json", twoDoorStock)}, 2*time.Minute)
	c.do("load the console", 30*time.Second,
		chromedp.Navigate(c.srv.URL),
		chromedp.WaitVisible(chromedp.CSS(`#door-2-state[data-locked="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#scan-door-label`)))
	if !eval[bool](c, `(() => { const p = document.querySelector('#scan-door'); p.value = '2'; return p.value === '2'; })()`) {
		t.Fatal("the door picker has no door 2")
	}
	c.do("scan for door 2", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#btn-scan`)),
		chromedp.WaitVisible(chromedp.CSS(`#door-2-state[data-locked="false"]`)))
	v, err := s.View(id)
	must(t, err)
	if v.Session == nil || v.Session.Door != 2 {
		t.Fatalf("session %+v, want one for door 2", v.Session)
	}
	for _, d := range v.Doors {
		if d.Door == 1 && !d.Locked {
			t.Fatal("door 1 unlocked on a scan for door 2")
		}
	}
}
