// Package platform is the simulator's virtual provincial platform: it holds
// the platform signing key, publishes the certified catalog and each
// cabinet's planogram (retained), turns a phone's scan into a signed
// `unlock`, ingests sales (de-duplicated by sale_id, checked for sequence
// gaps, acknowledged cumulatively) and keeps the alarms it receives.
//
// It talks to cabinets only over MQTT, exactly as docs/contract.md says, so it
// works against any broker. It is a test double of the real platform, not
// a product: payment itself is not modelled beyond the unlock.
package platform

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/bangfu/cabinet/payment"
	"github.com/bangfu/cabinet/telemetry/msg"
)

// Opts configures the platform.
type Opts struct {
	Broker string // tcp://host:port
	Prefix string // topic prefix, default msg.DefaultPrefix
	KeyID  string // default "plat-sim-1"
	Key    ed25519.PrivateKey
	Logger *slog.Logger
	// CommandTTL is how long an unlock stays valid (default 30s).
	CommandTTL time.Duration
	// QRMaxAge is the oldest QR a scan may present (default 2 minutes).
	QRMaxAge time.Duration
	// NoAcks makes the platform send no acks (for ack_mode broker).
	NoAcks bool
	// StateDir, when set, is where the platform keeps its books (sales,
	// reviews, alarms, claimed counters, acks) in a bbolt file, BooksFile,
	// and, unless Key is given, its signing key (KeyFile), so that both
	// survive a restart. Empty: the books live in memory only.
	StateDir string
	// Now is the platform's clock (default time.Now); reviews are stamped
	// with it.
	Now func() time.Time
	// OnSale, when set, observes the sales received: it is called once for
	// each sale the first time it arrives (not for copies, nor for the
	// sales read from the books at New), with its record (ReceivedAt is
	// when it arrived), once the sale is in the books and before it is
	// acknowledged. It runs outside the platform's lock on the MQTT
	// client's goroutine, so it may call the platform but must be quick.
	// cabsim's sale-load driver (-sale-every) measures latency with it.
	OnSale func(SaleRecord)
}

// DefaultLimitFen is the pre-authorised amount of a scan that names none
// (¥500, a typical credit-score "pay after" limit).
const DefaultLimitFen = 50000

// Gap is a run of sequence numbers the platform has not received.
type Gap struct {
	CabinetID string `json:"cabinet_id"`
	FromSeq   uint64 `json:"from_seq"`
	ToSeq     uint64 `json:"to_seq"`
}

// AlarmRecord is an alarm as received, with its cabinet.
type AlarmRecord struct {
	CabinetID string `json:"cabinet_id"`
	msg.Alarm
}

// Received is one raw cabinet message, kept for contract checks.
type Received struct {
	CabinetID string
	Leaf      string // sale, alarm, reply, heartbeat, state, restock
	Payload   []byte // the document (envelope opened) or plain state JSON
	At        time.Time
}

// SaleRecord is a de-duplicated sale, when it first arrived, how many
// copies came, and the review that settled it, if any.
type SaleRecord struct {
	Sale       msg.Sale  `json:"sale"`
	ReceivedAt time.Time `json:"received_at"`
	Copies     int       `json:"copies"`
	Review     *Review   `json:"review,omitempty"`
}

type cabinet struct {
	pub       ed25519.PublicKey
	planogram *msg.Planogram
	seqs      map[uint64]bool
	contig    uint64 // every seq ≤ contig received
	maxSeq    uint64
	online    bool
	fw        string       // its firmware version, from state and heartbeats
	books     cabinetBooks // claimed counters and acks, as kept in the books
}

// Platform is the virtual platform.
type Platform struct {
	o      Opts
	signer msg.Signer
	log    *slog.Logger

	wg     sync.WaitGroup
	stop   context.CancelFunc
	closed bool // guarded by mu

	mu       sync.Mutex
	client   mqtt.Client
	catalog  *msg.Catalog
	cabinets map[string]*cabinet
	sales    []SaleRecord
	saleIDs  map[string]int
	alarms   []AlarmRecord
	received []Received
	waiters  map[string]chan msg.Reply
	replies  map[string]msg.Reply
	rejected int
	hbs      int // verified heartbeats received (Heartbeats)
	changed  chan struct{}
	books    *books // nil without Opts.StateDir
}

// New makes a platform; Start connects it.
func New(o Opts) (*Platform, error) {
	if o.Prefix == "" {
		o.Prefix = msg.DefaultPrefix
	}
	if o.KeyID == "" {
		o.KeyID = "plat-sim-1"
	}
	if o.Key == nil && o.StateDir != "" {
		k, err := stateKey(o.StateDir)
		if err != nil {
			return nil, err
		}
		o.Key = k
	}
	if o.Key == nil {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		o.Key = k
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CommandTTL == 0 {
		o.CommandTTL = 30 * time.Second
	}
	if o.QRMaxAge == 0 {
		o.QRMaxAge = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Platform{
		o: o, signer: msg.Signer{Kid: o.KeyID, Key: o.Key}, log: o.Logger.With("src", "platform"),
		cabinets: map[string]*cabinet{}, saleIDs: map[string]int{},
		waiters: map[string]chan msg.Reply{}, replies: map[string]msg.Reply{}, changed: make(chan struct{}),
	}
	if o.StateDir != "" {
		b, err := openBooks(o.StateDir)
		if err != nil {
			return nil, err
		}
		sales, alarms, cabs, err := b.load()
		if err != nil {
			b.close()
			return nil, err
		}
		p.books = b
		p.alarms = alarms
		for id, cb := range cabs {
			p.cab(id).books = cb
		}
		for _, rec := range sales {
			p.addSaleLocked(rec)
		}
		if len(sales)+len(alarms) > 0 {
			p.log.Info("books opened", "path", b.path, "sales", len(sales), "alarms", len(alarms))
		}
	}
	return p, nil
}

// KeyID and PublicKey are what cabinets are provisioned with.
func (p *Platform) KeyID() string { return p.o.KeyID }

// PublicKey is the platform's verification key.
func (p *Platform) PublicKey() ed25519.PublicKey { return p.o.Key.Public().(ed25519.PublicKey) }

// Signer signs as the platform (tests use it to craft commands).
func (p *Platform) Signer() msg.Signer { return p.signer }

func (p *Platform) topics(cab string) msg.Topics { return msg.Topics{Prefix: p.o.Prefix, Cabinet: cab} }

// Start connects to the broker (retrying until ctx ends or it succeeds)
// and keeps reconnecting after losses until Close. Like the cabinet's link
// it makes a fresh paho client per connection instead of paho's
// auto-reconnect, whose resend path races under -race.
func (p *Platform) Start(ctx context.Context) error {
	for {
		lost := make(chan struct{}, 1)
		c, err := p.connect(ctx, lost)
		if err == nil {
			runCtx, cancel := context.WithCancel(context.Background())
			p.mu.Lock()
			p.client = c
			p.stop = cancel
			p.mu.Unlock()
			p.wg.Add(1)
			go p.keep(runCtx, lost)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("platform: connect: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *Platform) connect(ctx context.Context, lost chan struct{}) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker(p.o.Broker).
		SetClientID(fmt.Sprintf("bangfu-platform-sim-%x", p.PublicKey()[:4])).
		// A persistent session: the broker queues cabinet messages while
		// the platform itself is briefly away.
		SetCleanSession(false).SetOrderMatters(false).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(mqtt.Client, error) {
			select {
			case lost <- struct{}{}:
			default:
			}
		})
	c := mqtt.NewClient(opts)
	t := c.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return nil, err
		}
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := p.onConnect(c); err != nil {
		c.Disconnect(0)
		return nil, err
	}
	return c, nil
}

// keep reconnects after each loss until ctx ends.
func (p *Platform) keep(ctx context.Context, lost chan struct{}) {
	defer p.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lost:
		}
		p.log.Warn("platform lost the broker; reconnecting")
		for {
			lost = make(chan struct{}, 1)
			c, err := p.connect(ctx, lost)
			if err == nil {
				p.mu.Lock()
				p.client = c
				p.mu.Unlock()
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// Close disconnects and stops reconnecting.
func (p *Platform) Close() {
	p.mu.Lock()
	stop := p.stop
	p.closed = true
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
	p.wg.Wait()
	p.mu.Lock()
	c := p.client
	p.client = nil
	b := p.books
	p.books = nil
	p.mu.Unlock()
	if c != nil {
		c.Disconnect(250)
	}
	if b != nil {
		if err := b.close(); err != nil {
			p.log.Warn("books close", "err", err)
		}
	}
}

func (p *Platform) onConnect(c mqtt.Client) error {
	pre := p.o.Prefix + "/c/+/"
	filters := map[string]byte{}
	for _, leaf := range []string{"sale", "alarm", "reply", "heartbeat", "state", "restock"} {
		filters[pre+leaf] = 1
	}
	if t := c.SubscribeMultiple(filters, p.onMessage); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("platform: subscribe: %v", t.Error())
	}
	// Retained documents again: a restarted in-memory broker lost them.
	p.mu.Lock()
	cat := p.catalog
	plans := map[string]msg.Planogram{}
	for id, cb := range p.cabinets {
		if cb.planogram != nil {
			plans[id] = *cb.planogram
		}
	}
	p.mu.Unlock()
	if cat != nil {
		if err := p.publishSigned(c, p.topics("").Catalog(), *cat, true); err != nil {
			return err
		}
	}
	for id, pl := range plans {
		if err := p.publishSigned(c, p.topics(id).Planogram(), pl, true); err != nil {
			return err
		}
	}
	return nil
}

func (p *Platform) publishSigned(c mqtt.Client, topic string, body any, retained bool) error {
	data, err := p.signer.Seal(body)
	if err != nil {
		return err
	}
	t := c.Publish(topic, 1, retained, data)
	select {
	case <-t.Done():
		return t.Error()
	case <-time.After(10 * time.Second):
		return errors.New("platform: publish timed out")
	}
}

func (p *Platform) conn() (mqtt.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return nil, errors.New("platform: not started")
	}
	return p.client, nil
}

// SetCatalog publishes the certified catalog, retained.
func (p *Platform) SetCatalog(c msg.Catalog) error {
	p.mu.Lock()
	p.catalog = &c
	p.mu.Unlock()
	cl, err := p.conn()
	if err != nil {
		return nil // published on connect
	}
	return p.publishSigned(cl, p.topics("").Catalog(), c, true)
}

// Catalog returns the catalog payload the platform publishes.
func (p *Platform) Catalog() (msg.Catalog, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.catalog == nil {
		return msg.Catalog{}, false
	}
	return *p.catalog, true
}

// Register records a cabinet's public key (as provisioning would).
func (p *Platform) Register(cabinetID string, pub ed25519.PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cb := p.cab(cabinetID)
	cb.pub = pub
}

func (p *Platform) cab(id string) *cabinet {
	cb, ok := p.cabinets[id]
	if !ok {
		cb = &cabinet{seqs: map[uint64]bool{}}
		p.cabinets[id] = cb
	}
	return cb
}

// SetPlanogram publishes a cabinet's planogram, retained.
func (p *Platform) SetPlanogram(pl msg.Planogram) error {
	p.mu.Lock()
	p.cab(pl.CabinetID).planogram = &pl
	p.mu.Unlock()
	cl, err := p.conn()
	if err != nil {
		return nil
	}
	return p.publishSigned(cl, p.topics(pl.CabinetID).Planogram(), pl, true)
}

// Scan is a phone scanning the QR text qr: the platform checks the code's
// signature and age and sends a signed unlock of door (the shopper's
// choice on a cabinet of several doors; 0 means door 1) carrying its
// nonce, then waits for the cabinet's reply.
func (p *Platform) Scan(ctx context.Context, qr string, buyer msg.Buyer, limitFen int64, door int) (msg.Command, msg.Reply, error) {
	if door < 0 {
		return msg.Command{}, msg.Reply{}, fmt.Errorf("platform: door %d: want 1 or more (0: door 1)", door)
	}
	parsed, err := payment.ParseQR(qr)
	if err != nil {
		return msg.Command{}, msg.Reply{}, err
	}
	p.mu.Lock()
	cb, ok := p.cabinets[parsed.Cabinet]
	var pub ed25519.PublicKey
	if ok {
		pub = cb.pub
	}
	p.mu.Unlock()
	if pub == nil {
		return msg.Command{}, msg.Reply{}, fmt.Errorf("platform: cabinet %q is not registered", parsed.Cabinet)
	}
	if _, err := payment.VerifyQR(qr, pub, time.Now(), p.o.QRMaxAge); err != nil {
		return msg.Command{}, msg.Reply{}, err
	}
	if buyer.Kind == "" {
		buyer.Kind = msg.BuyerPerson
	}
	cmd := p.NewCommand(msg.CmdUnlock, parsed.Cabinet)
	cmd.SessionID = "S-" + msg.NewID(time.Now())
	cmd.QRNonce = parsed.Nonce
	cmd.Buyer = &buyer
	if limitFen <= 0 {
		limitFen = DefaultLimitFen
	}
	cmd.LimitFen = limitFen
	cmd.Door = max(door, 1)
	r, err := p.Send(ctx, cmd, p.signer)
	return cmd, r, err
}

// NewCommand returns a command header valid for CommandTTL.
func (p *Platform) NewCommand(typ, cabinetID string) msg.Command {
	now := time.Now()
	return msg.Command{ID: "cmd-" + msg.NewID(now), Type: typ, CabinetID: cabinetID,
		IssuedAt: msg.At(now), ExpiresAt: msg.At(now.Add(p.o.CommandTTL))}
}

// Send publishes cmd signed by s to cmd's cabinet topic and waits for the
// reply to its id (or ctx).
func (p *Platform) Send(ctx context.Context, cmd msg.Command, s msg.Signer) (msg.Reply, error) {
	return p.SendTo(ctx, cmd.CabinetID, cmd, s)
}

// SendTo is Send on another cabinet's topic (for wrong-cabinet tests).
func (p *Platform) SendTo(ctx context.Context, topicCabinet string, cmd msg.Command, s msg.Signer) (msg.Reply, error) {
	data, err := s.Seal(cmd)
	if err != nil {
		return msg.Reply{}, err
	}
	return p.SendRaw(ctx, topicCabinet, cmd.ID, data)
}

// SendRaw publishes raw bytes as a command and waits for a reply to id.
func (p *Platform) SendRaw(ctx context.Context, topicCabinet, id string, data []byte) (msg.Reply, error) {
	c, err := p.conn()
	if err != nil {
		return msg.Reply{}, err
	}
	ch := make(chan msg.Reply, 1)
	p.mu.Lock()
	delete(p.replies, id) // a replayed id must wait for its own, new reply
	p.waiters[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiters, id)
		p.mu.Unlock()
	}()
	t := c.Publish(p.topics(topicCabinet).Cmd(), 1, false, data)
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return msg.Reply{}, err
		}
	case <-ctx.Done():
		return msg.Reply{}, ctx.Err()
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return msg.Reply{}, fmt.Errorf("platform: no reply to %s: %w", id, ctx.Err())
	}
}

// onMessage runs on paho's router: everything it does is quick and under
// the platform's lock.
func (p *Platform) onMessage(c mqtt.Client, m mqtt.Message) {
	cabID, leaf, ok := msg.ParseCabinetTopic(p.o.Prefix, m.Topic())
	if !ok {
		return
	}
	now := time.Now()
	if leaf == "state" {
		var st msg.State
		if json.Unmarshal(m.Payload(), &st) == nil {
			p.mu.Lock()
			cb := p.cab(cabID)
			cb.online = st.Online
			if st.FW != "" {
				cb.fw = st.FW
			}
			p.keepReceived(Received{CabinetID: cabID, Leaf: leaf, Payload: append([]byte(nil), m.Payload()...), At: now})
			p.mu.Unlock()
		}
		return
	}
	p.mu.Lock()
	cb := p.cab(cabID)
	pub := cb.pub
	p.mu.Unlock()
	if pub == nil {
		p.log.Warn("message from unregistered cabinet", "cabinet", cabID, "topic", m.Topic())
		return
	}
	payload, _, err := msg.KeyRing{cabID: pub}.Open(m.Payload())
	if err != nil {
		p.mu.Lock()
		p.rejected++
		p.mu.Unlock()
		p.log.Warn("message refused", "cabinet", cabID, "topic", m.Topic(), "err", err)
		return
	}
	p.mu.Lock()
	p.keepReceived(Received{CabinetID: cabID, Leaf: leaf, Payload: payload, At: now})
	p.mu.Unlock()
	switch leaf {
	case "sale":
		var s msg.Sale
		if err := json.Unmarshal(payload, &s); err != nil || s.CabinetID != cabID || s.Seq == 0 {
			p.log.Warn("bad sale", "cabinet", cabID, "err", err)
			return
		}
		upto, fresh := p.ingestSale(s, now)
		if fresh != nil && p.o.OnSale != nil {
			p.o.OnSale(*fresh)
		}
		p.mu.Lock()
		closed := p.closed
		if !closed && !p.o.NoAcks {
			p.wg.Add(1) // under the lock Close takes before it waits: no Add after Wait
		}
		p.mu.Unlock()
		if !closed && !p.o.NoAcks {
			go func() { // not on paho's router: publish waits for a PUBACK (bounded by publishSigned's timeout)
				defer p.wg.Done()
				if err := p.publishSigned(c, p.topics(cabID).Ack(), p.ack(cabID, upto), false); err != nil {
					p.log.Warn("ack", "cabinet", cabID, "err", err)
					return
				}
				p.acked(cabID, upto)
			}()
		}
	case "alarm":
		var a msg.Alarm
		if json.Unmarshal(payload, &a) == nil {
			p.addAlarm(AlarmRecord{CabinetID: cabID, Alarm: a})
		}
	case "heartbeat":
		var hb msg.Heartbeat
		if json.Unmarshal(payload, &hb) == nil {
			p.heartbeat(cabID, hb)
		}

	case "reply":
		var r msg.Reply
		if json.Unmarshal(payload, &r) == nil {
			p.mu.Lock()
			p.replies[r.CmdID] = r
			if ch, ok := p.waiters[r.CmdID]; ok {
				select {
				case ch <- r:
				default:
				}
			}
			p.notify()
			p.mu.Unlock()
		}
	}
}

// notify wakes waiters; call with p.mu held.
func (p *Platform) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// ingest stores a sale once and returns the cabinet's contiguous seq.
func (p *Platform) ingest(s msg.Sale, now time.Time) uint64 {
	upto, _ := p.ingestSale(s, now)
	return upto
}

// ingestSale is ingest that also returns the sale's new record when this
// was its first arrival and the books took it (nil for a copy).
func (p *Platform) ingestSale(s msg.Sale, now time.Time) (upto uint64, fresh *SaleRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cb := p.cab(s.CabinetID)
	if i, dup := p.saleIDs[s.SaleID]; dup {
		rec := p.sales[i]
		rec.Copies++
		if p.books != nil {
			if err := p.books.putSale(i+1, rec, false); err != nil {
				p.log.Error("books: copy count not kept", "sale", s.SaleID, "err", err)
			}
		}
		p.sales[i] = rec
	} else {
		rec := SaleRecord{Sale: s, ReceivedAt: now.UTC(), Copies: 1}
		if p.books != nil {
			// Held means written: a sale the books could not keep is not
			// acknowledged, so the cabinet publishes it again.
			if err := p.books.putSale(len(p.sales)+1, rec, true); err != nil {
				p.log.Error("books: sale not kept; it stays unacknowledged", "cabinet", s.CabinetID, "seq", s.Seq, "err", err)
				return cb.contig, nil
			}
		}
		p.addSaleLocked(rec)
		fresh = &rec
		p.log.Info("sale received", "cabinet", s.CabinetID, "seq", s.Seq, "status", s.Status, "total_fen", s.TotalFen)
	}
	p.notify()
	return cb.contig, fresh
}

// addSaleLocked adds a new sale record to the in-memory books.
func (p *Platform) addSaleLocked(rec SaleRecord) {
	s := rec.Sale
	cb := p.cab(s.CabinetID)
	p.saleIDs[s.SaleID] = len(p.sales)
	p.sales = append(p.sales, rec)
	cb.seqs[s.Seq] = true
	cb.maxSeq = max(cb.maxSeq, s.Seq)
	for cb.seqs[cb.contig+1] {
		cb.contig++
	}
}

// addAlarm keeps an alarm received.
func (p *Platform) addAlarm(rec AlarmRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.alarms = append(p.alarms, rec)
	if p.books != nil {
		if err := p.books.putAlarm(len(p.alarms), rec); err != nil {
			p.log.Error("books: alarm not kept", "cabinet", rec.CabinetID, "err", err)
		}
	}
	p.notify()
}

// heartbeat keeps the newest counters a cabinet claims.
func (p *Platform) heartbeat(cabID string, hb msg.Heartbeat) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hbs++
	cb := p.cab(cabID)
	if old := cb.books.Counters; old != nil && !hb.At.After(cb.books.CountersAt) && hb.Counters.LastSeq <= old.LastSeq {
		return // an older heartbeat overtaken by a newer one (unless it counts more: a clock set back)
	}
	if hb.FW != "" {
		cb.fw = hb.FW
	}
	c := hb.Counters
	cb.books.Counters = &c
	cb.books.CountersAt = hb.At.UTC()
	p.keepCabinetLocked(cabID, cb)
	p.notify()
}

// ack is the acknowledgement of cabinet cabID's sales up to upto, bound
// to the cabinet when its firmware knows cabinet_id (older firmware decodes
// acks strictly and would refuse the field).
func (p *Platform) ack(cabID string, upto uint64) msg.Ack {
	a := msg.Ack{SalesUptoSeq: upto, At: msg.At(time.Now())}
	p.mu.Lock()
	fw := p.cab(cabID).fw
	p.mu.Unlock()
	if msg.FWAtLeast(fw, msg.AckCabinetIDSince) {
		a.CabinetID = cabID
	}
	return a
}

// acked records an ack the platform has sent.
func (p *Platform) acked(cabID string, upto uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cb := p.cab(cabID)
	if upto <= cb.books.AckedUpto {
		return
	}
	cb.books.AckedUpto = upto
	p.keepCabinetLocked(cabID, cb)
	p.notify()
}

func (p *Platform) keepCabinetLocked(id string, cb *cabinet) {
	if p.books == nil {
		return
	}
	if err := p.books.putCabinet(id, cb.books); err != nil {
		p.log.Error("books: cabinet record not kept", "cabinet", id, "err", err)
	}
}

// Sales returns the de-duplicated sales in arrival order and the gaps.
func (p *Platform) Sales() ([]SaleRecord, []Gap) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.sales)
	var gaps []Gap
	ids := make([]string, 0, len(p.cabinets))
	for id := range p.cabinets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		cb := p.cabinets[id]
		var g *Gap
		for seq := cb.contig + 1; seq <= cb.maxSeq; seq++ {
			switch {
			case !cb.seqs[seq] && g == nil:
				g = &Gap{CabinetID: id, FromSeq: seq, ToSeq: seq}
			case !cb.seqs[seq]:
				g.ToSeq = seq
			case g != nil:
				gaps = append(gaps, *g)
				g = nil
			}
		}
		if g != nil {
			gaps = append(gaps, *g)
		}
	}
	return out, gaps
}

// Alarms returns the alarms received.
func (p *Platform) Alarms() []AlarmRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.alarms)
}

// maxReceived is how many of the newest verified messages Received
// keeps: a fleet's heartbeats must not grow the platform without bound
// (the books keep the sales and alarms themselves).
const maxReceived = 10_000

// keepReceived appends r to the messages Received returns, dropping the oldest
// beyond maxReceived (in batches, so appending stays cheap); p.mu is held.
func (p *Platform) keepReceived(r Received) {
	p.received = append(p.received, r)
	if len(p.received) >= 2*maxReceived {
		p.received = slices.Clone(p.received[len(p.received)-maxReceived:])
	}
}

// Received returns the verified cabinet messages so far, oldest first: at
// least the newest maxReceived (10,000) of them.
func (p *Platform) Received() []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// Reply returns the reply to a command id, if one came.
func (p *Platform) Reply(id string) (msg.Reply, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.replies[id]
	return r, ok
}

// Heartbeats counts the verified heartbeats received since New, every
// copy included (also those overtaken by a newer one); cabsim's sale-load
// driver reports their rate.
func (p *Platform) Heartbeats() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hbs
}

// Rejected counts cabinet messages whose envelope did not verify.
func (p *Platform) Rejected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rejected
}

// Wait blocks until cond (evaluated under the platform's lock against its
// state) holds or ctx ends.
func (p *Platform) Wait(ctx context.Context, cond func() bool) error {
	for {
		p.mu.Lock()
		ok := cond()
		ch := p.changed
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SalesOf returns the sales of one cabinet (callable inside Wait's cond).
func (p *Platform) salesOfLocked(cab string) []SaleRecord {
	var out []SaleRecord
	for _, s := range p.sales {
		if s.Sale.CabinetID == cab {
			out = append(out, s)
		}
	}
	return out
}

// WaitSales waits until cabinet cab has at least n sales and returns them.
func (p *Platform) WaitSales(ctx context.Context, cab string, n int) ([]SaleRecord, error) {
	var out []SaleRecord
	err := p.Wait(ctx, func() bool {
		out = p.salesOfLocked(cab)
		return len(out) >= n
	})
	return out, err
}

// WaitAlarm waits for an alarm of kind from cab.
func (p *Platform) WaitAlarm(ctx context.Context, cab, kind string) (AlarmRecord, error) {
	var got AlarmRecord
	err := p.Wait(ctx, func() bool {
		for _, a := range p.alarms {
			if a.CabinetID == cab && a.Kind == kind {
				got = a
				return true
			}
		}
		return false
	})
	return got, err
}

// WaitBooks waits until cabinet cab's heartbeat counters claim at least
// lastSeq and, unless the platform sends no acks, its acks cover lastSeq.
func (p *Platform) WaitBooks(ctx context.Context, cab string, lastSeq uint64) error {
	return p.Wait(ctx, func() bool {
		cb, ok := p.cabinets[cab]
		return ok && cb.books.Counters != nil && cb.books.Counters.LastSeq >= lastSeq &&
			(p.o.NoAcks || cb.books.AckedUpto >= lastSeq)
	})
}
