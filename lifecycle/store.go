package lifecycle

import "github.com/credlife/clm/lifecycle/driver"

// PSKStatus is the administrative state of a PSK.
type PSKStatus = driver.PSKStatus

// The states of a PSK.
const (
	PSKActive   = driver.PSKActive   // usable
	PSKDisabled = driver.PSKDisabled // refused with CodePSKNotActive
)

// DeviceStatus is the administrative state of a device.
type DeviceStatus = driver.DeviceStatus

// The states of a device.
const (
	DeviceActive   = driver.DeviceActive   // usable
	DeviceDisabled = driver.DeviceDisabled // refused with CodeDeviceNotActive
)

// CRL reason codes (RFC 5280 §5.3.1) the engine records on transitions.
const (
	ReasonUnspecified   = 0
	ReasonKeyCompromise = 1
	ReasonSuperseded    = 4
)
