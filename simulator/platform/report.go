package platform

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/bangfu/cabinet/telemetry/msg"
)

// The county sales form (县级销售台账): one row per sale line.

// ReportHeader is the form's columns, in order: the seven the county form
// asks for, then certificate, origin county, cabinet, sale id and status.
var ReportHeader = []string{"序号", "产品名称", "卖方", "买方", "数量", "金额（元）", "交易时间",
	"证书编号", "产地县", "柜号", "销售单号", "状态"}

// BuyerPerson is the 买方 of a sale to an individual. A sale to a work
// unit or trade union names the paying organisation (buyer.org) instead;
// the buyer's own reference is never written to the form.
const BuyerPerson = "个人消费者"

// CST is China Standard Time, UTC+8, the form's time zone.
var CST = time.FixedZone("CST", 8*3600)

// ReportTimeLayout is how the form writes times (in CST).
const ReportTimeLayout = "2006-01-02 15:04:05"

// Report statuses beyond the sale's own (exact, ambiguous): a flagged sale
// a reviewer settled.
const (
	StatusReviewedAccept   = "reviewed:accept"
	StatusReviewedRecharge = "reviewed:recharge"
)

// ReportRow is one line of one sale on the form.
type ReportRow struct {
	No        int
	Product   string // 产品名称: the line's product name
	Seller    string // 卖方: the line's supplier
	Buyer     string // 买方
	Qty       int
	AmountFen int64
	At        time.Time // 交易时间: the sale's closed_at (the door shut)
	CertNo    string
	Origin    string // 产地县: the origin county's name, or its division code (origin_code) if no catalog names it
	Cabinet   string
	SaleID    string
	Status    string
}

// ReportFilter picks the sales on a form: closed_at in [From, To) (a zero
// bound is open) and, when Cabinet is set, that cabinet's only.
type ReportFilter struct {
	From, To time.Time
	Cabinet  string
}

func (f ReportFilter) match(s msg.Sale) bool {
	t := s.ClosedAt.Time
	return (f.Cabinet == "" || s.CabinetID == f.Cabinet) &&
		(f.From.IsZero() || !t.Before(f.From)) && (f.To.IsZero() || t.Before(f.To))
}

// Origins maps each origin_code of a catalog to its origin's name.
func Origins(c msg.Catalog) map[string]string {
	m := map[string]string{}
	for _, p := range c.Products {
		if p.OriginCode != "" && p.Origin != "" {
			m[p.OriginCode] = p.Origin
		}
	}
	return m
}

// BuyerName is a sale's 买方.
func BuyerName(b msg.Buyer) string {
	if b.Kind != msg.BuyerPerson && b.Org != "" {
		return b.Org
	}
	return BuyerPerson
}

// ReportRows builds the form from sale records: each sale's settled lines
// (a reviewed sale's review basket), sales in order of closed_at, then
// cabinet and seq. Sales without lines (empty, cancelled, or settled at
// nothing) have no rows. origins maps an origin_code to the county's name
// (a catalog's origin); a code it lacks is written as it is.
func ReportRows(recs []SaleRecord, f ReportFilter, origins map[string]string) []ReportRow {
	picked := make([]*SaleRecord, 0, len(recs))
	for i := range recs {
		if f.match(recs[i].Sale) {
			picked = append(picked, &recs[i])
		}
	}
	slices.SortStableFunc(picked, func(a, b *SaleRecord) int {
		if c := a.Sale.ClosedAt.Compare(b.Sale.ClosedAt.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Sale.CabinetID, b.Sale.CabinetID); c != 0 {
			return c
		}
		switch {
		case a.Sale.Seq < b.Sale.Seq:
			return -1
		case a.Sale.Seq > b.Sale.Seq:
			return 1
		}
		return 0
	})
	var rows []ReportRow
	for _, r := range picked {
		lines, _ := r.Settled()
		status := r.Sale.Status
		if r.Review != nil {
			status = StatusReviewedAccept
			if r.Review.Decision == DecisionRecharge {
				status = StatusReviewedRecharge
			}
		}
		buyer := BuyerName(r.Sale.Buyer)
		for _, l := range lines {
			origin := l.OriginCode
			if name := origins[origin]; name != "" {
				origin = name
			}
			rows = append(rows, ReportRow{No: len(rows) + 1, Product: l.Name, Seller: l.Supplier, Buyer: buyer,
				Qty: l.Qty, AmountFen: l.AmountFen, At: r.Sale.ClosedAt.Time, CertNo: l.CertNo, Origin: origin,
				Cabinet: r.Sale.CabinetID, SaleID: r.Sale.SaleID, Status: status})
		}
	}
	return rows
}

// Yuan writes fen as yuan with two decimals ("29.90"), in integers only.
func Yuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign, u = "-", uint64(-(fen+1))+1 // also for math.MinInt64
	}
	return sign + strconv.FormatUint(u/100, 10) + "." + fmt.Sprintf("%02d", u%100)
}

// CSTTime writes t as the form does: China Standard Time, to the second.
func CSTTime(t time.Time) string { return t.In(CST).Format(ReportTimeLayout) }

func (r ReportRow) record() []string {
	return []string{strconv.Itoa(r.No), r.Product, r.Seller, r.Buyer, strconv.Itoa(r.Qty), Yuan(r.AmountFen),
		CSTTime(r.At), r.CertNo, r.Origin, r.Cabinet, r.SaleID, r.Status}
}

// utf8BOM lets Excel know a CSV file is UTF-8.
const utf8BOM = "\uFEFF"

// WriteReportCSV writes the form as UTF-8 CSV with a byte-order mark, the
// header first, CRLF line ends (what Excel writes).
func WriteReportCSV(w io.Writer, rows []ReportRow) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(utf8BOM); err != nil {
		return err
	}
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	if err := cw.Write(ReportHeader); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write(r.record()); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// ReportSheet is the xlsx form's sheet name.
const ReportSheet = "销售台账"

// WriteReportXLSX writes the form as an .xlsx workbook of one sheet. 序号
// and 数量 are numbers; 金额（元） is a number shown with two decimals,
// the value Excel itself holds for the decimal text Yuan writes; times
// are text in CST.
func WriteReportXLSX(w io.Writer, rows []ReportRow) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", ReportSheet); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(ReportSheet)
	if err != nil {
		return err
	}
	money, err := f.NewStyle(&excelize.Style{NumFmt: 2}) // 0.00
	if err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	widths := []float64{8, 28, 24, 16, 6, 12, 20, 20, 10, 18, 30, 18}
	for i, wd := range widths {
		if err := sw.SetColWidth(i+1, i+1, wd); err != nil {
			return err
		}
	}
	head := make([]any, len(ReportHeader))
	for i, h := range ReportHeader {
		head[i] = excelize.Cell{StyleID: bold, Value: h}
	}
	if err := sw.SetRow("A1", head, excelize.RowOpts{}); err != nil {
		return err
	}
	row := make([]any, len(ReportHeader))
	for i, r := range rows {
		// The decimal text, read as Excel reads typed text: no arithmetic
		// on fractions of a yuan.
		amount, err := strconv.ParseFloat(Yuan(r.AmountFen), 64)
		if err != nil {
			return err
		}
		row[0], row[1], row[2], row[3] = r.No, r.Product, r.Seller, r.Buyer
		row[4] = r.Qty
		row[5] = excelize.Cell{StyleID: money, Value: amount}
		row[6], row[7], row[8], row[9], row[10], row[11] = CSTTime(r.At), r.CertNo, r.Origin, r.Cabinet, r.SaleID, r.Status
		cell, err := excelize.CoordinatesToCellName(1, i+2)
		if err != nil {
			return err
		}
		if err := sw.SetRow(cell, row); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}
