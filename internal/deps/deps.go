package deps
import (
 _ "periph.io/x/conn/v3/gpio"
 _ "periph.io/x/host/v3"
 _ "github.com/eclipse/paho.mqtt.golang"
 _ "go.etcd.io/bbolt"
 _ "github.com/skip2/go-qrcode"
 _ "github.com/mochi-mqtt/server/v2"
 _ "github.com/santhosh-tekuri/jsonschema/v6"
 _ "go.uber.org/goleak"
)
