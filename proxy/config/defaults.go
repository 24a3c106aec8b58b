package config

import (
	"time"

	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/h1"
)

// Default returns every default in one place; Parse starts from it.
func Default() Config {
	return Config{
		Listen:      ":8080",
		AdminListen: "127.0.0.1:9090",
		IO:          IOEventLoop,
		H2CServer:   H2ServerNative,
		Admin:       Admin{TokenEnv: "EDGE_ADMIN_TOKEN"},
		Balancer:    Balancer{Policy: "round-robin", HashKey: "ip"},
		Health: Health{
			Active:            true,
			Path:              "/healthz",
			Interval:          2 * time.Second,
			Timeout:           time.Second,
			Rise:              2,
			Fall:              2,
			PassiveFailures:   3,
			EjectBase:         5 * time.Second,
			EjectMax:          60 * time.Second,
			MaxEjectedPercent: 50,
			SlowStart:         10 * time.Second,
			PanicThreshold:    0.5,
		},
		Retries: Retries{
			Attempts:      3,
			PerTryTimeout: 5 * time.Second,
			BudgetRatio:   0.2,
			MinPerSecond:  10,
			Window:        10 * time.Second,
		},
		Timeouts: Timeouts{
			Request:      15 * time.Second,
			Read:         30 * time.Second,
			Write:        30 * time.Second,
			Idle:         60 * time.Second,
			Dial:         3 * time.Second,
			UpstreamIdle: 4 * time.Second,
			Shutdown:     15 * time.Second,
		},
		Limits: Limits{
			MaxHeaderBytes: 16 << 10,
			MaxBodyBytes:   10 << 20,
			MaxURIBytes:    8 << 10,
			// Room for an 8 KiB target with the method, spaces and version;
			// field lines as Apache's LimitRequestFieldSize; 100 fields as
			// Apache's LimitRequestFields and gunicorn (docs/configuration.md).
			MaxRequestLineBytes: h1.DefaultMaxRequestLineBytes,
			MaxFieldLineBytes:   h1.DefaultMaxFieldLineBytes,
			MaxHeaderFields:     h1.DefaultMaxHeaders,
			ObsFold:             "reject",
			DangerousFraming:    "reject",
			MaxResponseBytes:    64 << 20,
			MaxConnsPerUpstream: 1024,
			// Event-loop core only: 0.65x the CPU per uncached request and
			// 1.29x the req/s of the build without it in the same bench rounds
			// (docs/benchmarks.md, 2026-12-07).
			UpstreamPipelineDepth: 8,
			StreamRequestBytes:    64 << 10,
			// Off by default: streaming a response costs four allocations per
			// forwarded request in fasthttp, and with the cache on (the usual
			// set-up) every response is held anyway.
			StreamResponseBytes: 0,
		},
		JWT: JWT{
			SecretEnv:  "JWT_SECRET",
			Issuer:     "novashop",
			Audience:   "novashop-api",
			Leeway:     30 * time.Second,
			CookieName: "novashop_access",
		},
		// The edge keeps a smaller local tier than the cache library's 256 MiB
		// default: entries live in Redis, the local copy only holds the hot ones.
		Cache: Cache{
			MaxMemoryBytes:       64 << 20,
			MaxEntryBytes:        cache.DefaultMaxEntryBytes,
			RedisTimeout:         cache.DefaultRedisTimeout,
			ProbeInterval:        cache.DefaultProbeInterval,
			ReadYourWritesWindow: cache.DefaultReadYourWritesWindow,
			StaleOnError:         cache.DefaultStaleOnError,
			MaxTTL:               cache.DefaultMaxTTL,
			Retention:            cache.DefaultRetention,
			HeuristicMax:         cache.DefaultHeuristicMax,
			CoalesceWait:         cache.DefaultCoalesceWait,
			Namespace:            cache.DefaultNamespace,
			TagIndexNamespace:    cache.DefaultTagIndexNamespace,
			Name:                 cache.DefaultName,
		},
		AccessLog:     AccessLog{Enabled: true, Sample: 0.01, BufferBytes: 64 << 10, FlushInterval: time.Second},
		TLS:           tlsDefaults(),
		Compression:   compressionDefaults(),
		ProxyProtocol: proxyProtocolDefaults(),
		Forwarded:     forwardedDefaults(),
	}
}
