package measure

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// DstackRuntimeEventType is the event type dstack gives the runtime events it extends into
// RTMR3 (cc-eventlog's DSTACK_RUNTIME_EVENT_TYPE; not a TCG type).
const DstackRuntimeEventType uint32 = 0x08000001

// The dstack runtime event names MeasureKMS replays, in dstack's boot order.
const (
	EventSystemPreparing = "system-preparing"
	EventAppID           = "app-id"
	EventComposeHash     = "compose-hash"
	EventInstanceID      = "instance-id"
	EventBootMRDone      = "boot-mr-done"
	EventKeyProvider     = "key-provider"
	EventStorageFS       = "storage-fs"
	EventSystemReady     = "system-ready"
)

var keyProviderRE = lazyre.New(`^[a-z][a-z0-9_-]{0,31}$`)

// DstackEventDigest is the digest dstack extends into RTMR3 for a runtime event:
// SHA-384(le32(0x08000001) ‖ ":" ‖ name ‖ ":" ‖ payload).
func DstackEventDigest(name string, payload []byte) [tdx.RegisterSize]byte {
	buf := binary.LittleEndian.AppendUint32(nil, DstackRuntimeEventType)
	buf = append(buf, ':')
	buf = append(buf, name...)
	buf = append(buf, ':')
	buf = append(buf, payload...)
	return tdx.Digest(buf)
}

// DstackEvent is the RTMR3 event dstack extends for name and payload; its Event text is
// "name" or "name: <payload hex>".
func DstackEvent(name string, payload []byte) tdx.Event {
	text := name
	if len(payload) > 0 {
		text += ": " + hex.EncodeToString(payload)
	}
	return tdx.Event{IMR: 3, Digest: DstackEventDigest(name, payload), EventType: "DSTACK_RUNTIME_EVENT", Event: text}
}

// DstackBoot are the deployment inputs of the RTMR3 events a dstack CVM extends while it boots
// an app. Image inspection cannot see them, so they are fixed here and documented with the
// measurement; the defaults describe a KMS deployed with no instance id.
type DstackBoot struct {
	// AppID is the 20-byte app id; empty means the first 20 bytes of the compose hash, the id
	// dstack derives for an app that has no KMS-registered one.
	AppID []byte
	// InstanceID is the instance id; empty (the default) is what an app-compose with
	// "no_instance_id": true extends.
	InstanceID []byte
	// KeyProviderName is the key provider ("kms", "local", "none"); empty means "kms".
	KeyProviderName string
	// KeyProviderID identifies the key provider (the KMS root key id); it goes into the
	// key-provider payload as lower-case hex.
	KeyProviderID []byte
	// StorageFS is the data filesystem dstack reports ("ext4", "zfs"); empty omits the
	// storage-fs event (dstack releases before 0.5 do not extend it).
	StorageFS string
}

// Events returns the RTMR3 events dstack extends when it boots an app with compose hash
// composeHash, in order:
//
//	system-preparing   (empty payload)
//	app-id             AppID (default: composeHash[:20])
//	compose-hash       the 32-byte compose hash
//	instance-id        InstanceID (default: empty)
//	boot-mr-done       (empty payload)
//	key-provider       {"name":"<KeyProviderName>","id":"<hex KeyProviderID>"}
//	storage-fs         StorageFS (only when set)
//	system-ready       (empty payload)
//
// Replaying them from zero gives the expected RTMR3. Events dstack 0.5.9+ adds for KMS
// self-attestation (mr-kms, os-image-hash) are not replayed: they depend on the KMS instance.
func (b DstackBoot) Events(composeHash [32]byte) ([]tdx.Event, error) {
	appID := b.AppID
	if len(appID) == 0 {
		appID = composeHash[:20]
	}
	if len(appID) != 20 {
		return nil, outcome.UsageErrorf("dstack app id: %d bytes, want 20", len(appID))
	}
	name := b.KeyProviderName
	if name == "" {
		name = "kms"
	}
	if !keyProviderRE().MatchString(name) {
		return nil, outcome.UsageErrorf("dstack key provider %q: want a lower-case name such as kms, local or none", name)
	}
	kp, err := json.Marshal(struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	}{name, hex.EncodeToString(b.KeyProviderID)})
	if err != nil {
		return nil, fmt.Errorf("key-provider payload: %w", err)
	}
	events := []tdx.Event{
		DstackEvent(EventSystemPreparing, nil),
		DstackEvent(EventAppID, appID),
		DstackEvent(EventComposeHash, composeHash[:]),
		DstackEvent(EventInstanceID, b.InstanceID),
		DstackEvent(EventBootMRDone, nil),
		DstackEvent(EventKeyProvider, kp),
	}
	if b.StorageFS != "" {
		events = append(events, DstackEvent(EventStorageFS, []byte(b.StorageFS)))
	}
	return append(events, DstackEvent(EventSystemReady, nil)), nil
}
