package network

import "github.com/fusebox/fusebox/network/netspec"

// The option syntax lives in netspec, which the CLI imports without the
// CNI machinery; these names keep it part of this package's API.
type (
	PortBinding = netspec.PortBinding
	ExposedPort = netspec.ExposedPort
	APIBinding  = netspec.APIBinding
	Kind        = netspec.Kind
	Mode        = netspec.Mode
	HostEntry   = netspec.HostEntry
)

// Names of the predefined networks and the kinds of network stack.
const (
	DefaultNetwork = netspec.DefaultNetwork
	HostNetwork    = netspec.HostNetwork
	NoneNetwork    = netspec.NoneNetwork

	KindBridge    = netspec.KindBridge
	KindNone      = netspec.KindNone
	KindHost      = netspec.KindHost
	KindContainer = netspec.KindContainer
)

// The option errors, for errors.Is.
var (
	ErrInvalidPort  = netspec.ErrInvalidPort
	ErrNoPublicPort = netspec.ErrNoPublicPort
	ErrInvalidMode  = netspec.ErrInvalidMode
	ErrInvalidHost  = netspec.ErrInvalidHost
)

// The parsers and formatters, see netspec.
var (
	ParsePublish   = netspec.ParsePublish
	ParseBinding   = netspec.ParseBinding
	ParseExpose    = netspec.ParseExpose
	PublishAll     = netspec.PublishAll
	PortLines      = netspec.PortLines
	PortsColumn    = netspec.PortsColumn
	APIPorts       = netspec.APIPorts
	ParseMode      = netspec.ParseMode
	ParseExtraHost = netspec.ParseExtraHost
)

func validName(s string) bool { return netspec.ValidName(s) }

func portErrorf(format string, args ...any) error { return netspec.InvalidPortf(format, args...) }
