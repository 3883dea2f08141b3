package board

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
	"periph.io/x/conn/v3/gpio"
)

// The file's shape, for Format. Parse does not use these: it walks the YAML
// tree itself to keep every key's line.
type (
	fileBoard struct {
		Model       string            `yaml:"model"`
		Host        Host              `yaml:"host"`
		GPIOStack   GPIOStack         `yaml:"gpio_stack"`
		Reserved    map[string]string `yaml:"reserved,omitempty"`
		Doors       []fileDoor        `yaml:"doors"`
		Shelves     []fileShelf       `yaml:"shelves"`
		Display     fileDisplay       `yaml:"display"`
		Thermometer *fileThermometer  `yaml:"thermometer,omitempty"`
		Indicator   *fileIndicator    `yaml:"indicator,omitempty"`
	}
	fileDoor struct {
		Number int        `yaml:"number"`
		Lock   fileLock   `yaml:"lock"`
		Switch fileSwitch `yaml:"switch"`
	}
	fileLock struct {
		Pin       string        `yaml:"pin"`
		ActiveLow bool          `yaml:"active_low"`
		FailSafe  bool          `yaml:"fail_safe"`
		Mode      LockMode      `yaml:"mode"`
		PulseTime string        `yaml:"pulse_time,omitempty"`
		Settle    string        `yaml:"settle,omitempty"`
		Feedback  *fileFeedback `yaml:"feedback,omitempty"`
	}
	fileFeedback struct {
		Pin         string `yaml:"pin"`
		LockedLevel string `yaml:"locked_level"`
		Pull        string `yaml:"pull"`
	}
	fileSwitch struct {
		Pin         string `yaml:"pin"`
		ClosedLevel string `yaml:"closed_level"`
		Pull        string `yaml:"pull"`
		Debounce    string `yaml:"debounce,omitempty"`
		Poll        string `yaml:"poll,omitempty"`
	}
	fileShelf struct {
		Number int        `yaml:"number"`
		Door   int        `yaml:"door"`
		HX711  fileHX711  `yaml:"hx711"`
		Right  *fileHX711 `yaml:"hx711_right,omitempty"`
	}
	fileHX711 struct {
		Clock        string `yaml:"clock"`
		Data         string `yaml:"data"`
		Gain         Gain   `yaml:"gain"`
		SharedClock  bool   `yaml:"shared_clock"`
		ReadyTimeout string `yaml:"ready_timeout,omitempty"`
	}
	fileDisplay struct {
		ST7789 *fileST7789 `yaml:"st7789,omitempty"`
		FBDev  *fileFBDev  `yaml:"fbdev,omitempty"`
	}
	fileST7789 struct {
		SPI       string      `yaml:"spi"`
		DC        string      `yaml:"dc"`
		RST       string      `yaml:"rst,omitempty"`
		Backlight *fileOutput `yaml:"backlight,omitempty"`
		Width     int         `yaml:"width"`
		Height    int         `yaml:"height"`
		Rotation  int         `yaml:"rotation"`
		XOffset   int         `yaml:"x_offset"`
		YOffset   int         `yaml:"y_offset"`
		Invert    bool        `yaml:"invert"`
		SPISpeed  string      `yaml:"spi_speed,omitempty"`
	}
	fileFBDev struct {
		Device string `yaml:"device"`
	}
	fileThermometer struct {
		DS18B20 string `yaml:"ds18b20"`
		Pin     string `yaml:"pin,omitempty"`
	}
	fileIndicator struct {
		LED    fileOutput  `yaml:"led"`
		Buzzer *fileOutput `yaml:"buzzer,omitempty"`
	}
	fileOutput struct {
		Pin       string `yaml:"pin"`
		ActiveLow bool   `yaml:"active_low"`
	}
)

func levelName(l gpio.Level) string {
	if l == gpio.High {
		return "high"
	}
	return "low"
}

func pullName(p gpio.Pull) string {
	switch p {
	case gpio.PullUp:
		return "up"
	case gpio.PullDown:
		return "down"
	case gpio.Float:
		return "none"
	}
	return p.String() // not valid in a file; Parse will say so
}

func durationText[T interface{ String() string }](d T, zero bool) string {
	if zero {
		return ""
	}
	return d.String()
}

func (o *Output) file() *fileOutput {
	if o == nil {
		return nil
	}
	return &fileOutput{Pin: o.Pin, ActiveLow: o.ActiveLow}
}

func (h *HX711) file() *fileHX711 {
	return &fileHX711{Clock: h.Clock, Data: h.Data, Gain: h.Gain, SharedClock: h.SharedClock,
		ReadyTimeout: durationText(h.ReadyTimeout, h.ReadyTimeout == 0)}
}

// Format writes b as a board file without comments, in the key order of the
// package documentation. Parse reads back the same Board.
func (b *Board) Format() ([]byte, error) {
	f := fileBoard{Model: b.Model, Host: b.Host, GPIOStack: b.GPIOStack, Reserved: b.Reserved}
	if t := b.Thermometer; t != nil {
		f.Thermometer = &fileThermometer{DS18B20: t.DS18B20, Pin: t.Pin}
	}
	for _, d := range b.Doors {
		fd := fileDoor{Number: d.Number,
			Lock: fileLock{Pin: d.Lock.Pin, ActiveLow: d.Lock.ActiveLow, FailSafe: d.Lock.FailSafe, Mode: d.Lock.Mode,
				PulseTime: durationText(d.Lock.PulseTime, d.Lock.PulseTime == 0),
				Settle:    durationText(d.Lock.Settle, d.Lock.Settle == 0)},
			Switch: fileSwitch{Pin: d.Switch.Pin, ClosedLevel: levelName(d.Switch.ClosedLevel), Pull: pullName(d.Switch.Pull),
				Debounce: durationText(d.Switch.Debounce, d.Switch.Debounce == 0),
				Poll:     durationText(d.Switch.Poll, d.Switch.Poll == 0)},
		}
		if fb := d.Lock.Feedback; fb != nil {
			fd.Lock.Feedback = &fileFeedback{Pin: fb.Pin, LockedLevel: levelName(fb.LockedLevel), Pull: pullName(fb.Pull)}
		}
		f.Doors = append(f.Doors, fd)
	}
	for _, s := range b.Shelves {
		fs := fileShelf{Number: s.Number, Door: s.Door, HX711: *s.HX711.file()}
		if s.Right != nil {
			fs.Right = s.Right.file()
		}
		f.Shelves = append(f.Shelves, fs)
	}
	if st := b.Display.ST7789; st != nil {
		f.Display.ST7789 = &fileST7789{SPI: st.SPI, DC: st.DC, RST: st.RST, Backlight: st.Backlight.file(),
			Width: st.Width, Height: st.Height, Rotation: st.Rotation, XOffset: st.XOffset, YOffset: st.YOffset,
			Invert: st.Invert, SPISpeed: durationText(st.SPISpeed, st.SPISpeed == 0)}
	}
	if fb := b.Display.FBDev; fb != nil {
		f.Display.FBDev = &fileFBDev{Device: fb.Device}
	}
	if ind := b.Indicator; ind != nil {
		f.Indicator = &fileIndicator{LED: *ind.LED.file(), Buzzer: ind.Buzzer.file()}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2) // as the shipped files are written
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("board: format: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("board: format: %w", err)
	}
	return buf.Bytes(), nil
}
