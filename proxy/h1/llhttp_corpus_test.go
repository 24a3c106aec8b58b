package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// The request fixtures of nodejs/llhttp (test/request/*.md, MIT licence), a
// strict parser's own test corpus, turned into raw bytes the way its test
// runner does (each line ends in CRLF, \r \n \t \xNN and octal escapes
// decoded, a trailing backslash joins lines). Only the cases run in llhttp's
// default (strict) mode are here; the lenient-flag variants are left out.
// Where llhttp pauses (CONNECT, Upgrade) the input stops at the pause, since
// what follows is another protocol. One certificate in "X-SSL-Nonsense" is
// shortened; the case is about its folded lines.
//
// The edge's verdict is the framer's, then fasthttp's parse of each request
// the framer passed (as in the goroutine core). Each difference from llhttp's
// verdict is a deliberate choice, named in why and listed in
// docs/http-parsing.md.

const (
	whyHost   = "§3.2: an HTTP/1.1 request without Host is rejected (llhttp does not check Host)"
	whyFold   = "§5.2: obsolete line folding is rejected, never unfolded"
	whyHTTP09 = "§3: an HTTP/0.9 request-line (no version) is rejected"
	whyMethod = "RFC 9110 §9.1: any token is a method (llhttp knows a fixed list and ties ANNOUNCE to RTSP)"
	whyClose  = "bytes after a message that closes the connection are never read, not an error"
	whyStar   = "§3.2.4: the asterisk-form is for OPTIONS only (fasthttp refuses it too)"
)

type corpusCase struct {
	file, name string
	in         string
	finish     bool // llhttp_finish() after the input: an unfinished message is an error
	llhttp     bool // llhttp accepts the input
	why        string
}

var llhttpCorpus = []corpusCase{
	// sample.md
	{"sample", "Simple request", "OPTIONS /url HTTP/1.1\r\nHeader1: Value1\r\nHeader2:\t Value2\r\n\r\n", false, true, whyHost},
	{"sample", "Request with method starting with H", "HEAD /url HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"sample", "curl GET", "GET /test HTTP/1.1\r\nUser-Agent: curl/7.18.0 (i486-pc-linux-gnu) libcurl/7.18.0 OpenSSL/0.9.8g zlib/1.2.3.3 libidn/1.1\r\nHost: 0.0.0.0=5000\r\nAccept: */*\r\n\r\n", false, true, ""},
	{"sample", "Firefox GET", "GET /favicon.ico HTTP/1.1\r\nHost: 0.0.0.0=5000\r\nUser-Agent: Mozilla/5.0 (X11; U; Linux i686; en-US; rv:1.9) Gecko/2008061015 Firefox/3.0\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-us,en;q=0.5\r\nAccept-Encoding: gzip,deflate\r\nAccept-Charset: ISO-8859-1,utf-8;q=0.7,*;q=0.7\r\nKeep-Alive: 300\r\nConnection: keep-alive\r\n\r\n", false, true, ""},
	{"sample", "DUMBPACK", "GET /dumbpack HTTP/1.1\r\naaaaaaaaaaaaa:++++++++++\r\n\r\n", false, true, whyHost},
	{"sample", "No headers and no body", "GET /get_no_headers_no_body/world HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"sample", "One header and no body", "GET /get_one_header_no_body HTTP/1.1\r\nAccept: */*\r\n\r\n", false, true, whyHost},
	{"sample", "Apache bench GET", "GET /test HTTP/1.0\r\nHost: 0.0.0.0:5000\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n", false, true, ""},
	{"sample", "Prefix newline", "\r\nGET /test HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"sample", "No HTTP version", "GET /\r\n\r\n", false, true, whyHTTP09},
	{"sample", "Line folding in header value with CRLF", "GET / HTTP/1.1\r\nLine1:   abc\r\n\tdef\r\n ghi\r\n\t\tjkl\r\n  mno \r\n\t \tqrs\r\nLine2: \t line2\t\r\nLine3:\r\n line3\r\nLine4: \r\n \r\nConnection:\r\n close\r\n\r\n", false, true, whyFold},
	{"sample", "Line folding in header value with LF", "GET / HTTP/1.1\nLine1:   abc\n\tdef\n ghi\n\t\tjkl\n  mno \n\t \tqrs\nLine2: \t line2\t\nLine3:\n line3\nLine4: \n \nConnection:\n close\n\n", false, false, ""},
	{"sample", "Request starting with CRLF", "\r\nGET /url HTTP/1.1\r\nHeader1: Value1\r\n\r\n", false, true, whyHost},
	{"sample", "Extended Characters", "GET / HTTP/1.1\r\nTest: D\xc3\xbcsseldorf\r\n\r\n", false, true, whyHost},
	{"sample", "255 ASCII in header value", "OPTIONS /url HTTP/1.1\r\nHeader1: Value1\r\nHeader2: \xffValue2\r\n\r\n", false, true, whyHost},
	{"sample", "X-SSL-Nonsense", "GET / HTTP/1.1\r\nX-SSL-Nonsense:   -----BEGIN CERTIFICATE-----\r\n\tMIIFbTCCBFWgAwIBAgICH4cwDQYJKoZIhvcNAQEFBQAwcDELMAkGA1UEBhMCVUsx\r\n\tETAPBgNVBAoTCGVTY2llbmNlMRIwEAYDVQQLEwlBdXRob3JpdHkxCzAJBgNVBAMT\r\n\tRA==\r\n\t-----END CERTIFICATE-----\r\n\r\n", false, true, whyFold},

	// method.md
	{"method", "REPORT request", "REPORT /test HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"method", "CONNECT request", "CONNECT 0-home0.netscape.com:443 HTTP/1.0\r\nUser-agent: Mozilla/1.1N\r\nProxy-authorization: basic aGVsbG86d29ybGQ=\r\n\r\n", false, true, ""},
	{"method", "CONNECT request with CAPS", "CONNECT HOME0.NETSCAPE.COM:443 HTTP/1.0\r\nUser-agent: Mozilla/1.1N\r\nProxy-authorization: basic aGVsbG86d29ybGQ=\r\n\r\n", false, true, ""},
	{"method", "CONNECT with body", "CONNECT foo.bar.com:443 HTTP/1.0\r\nUser-agent: Mozilla/1.1N\r\nProxy-authorization: basic aGVsbG86d29ybGQ=\r\nContent-Length: 10\r\n\r\n", false, true, ""},
	{"method", "M-SEARCH request", "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: \"ssdp:all\"\r\n\r\n", false, true, whyStar},
	{"method", "PATCH request", "PATCH /file.txt HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/example\r\nIf-Match: \"e0023aa4e\"\r\nContent-Length: 10\r\n\r\ncccccccccc", false, true, ""},
	{"method", "PURGE request", "PURGE /file.txt HTTP/1.1\r\nHost: www.example.com\r\n\r\n", false, true, ""},
	{"method", "SEARCH request", "SEARCH / HTTP/1.1\r\nHost: www.example.com\r\n\r\n", false, true, ""},
	{"method", "LINK request", "LINK /images/my_dog.jpg HTTP/1.1\r\nHost: example.com\r\nLink: <http://example.com/profiles/joe>; rel=\"tag\"\r\nLink: <http://example.com/profiles/sally>; rel=\"tag\"\r\n\r\n", false, true, ""},
	{"method", "UNLINK request", "UNLINK /images/my_dog.jpg HTTP/1.1\r\nHost: example.com\r\nLink: <http://example.com/profiles/sally>; rel=\"tag\"\r\n\r\n", false, true, ""},
	{"method", "SOURCE request", "SOURCE /music/sweet/music HTTP/1.1\r\nHost: example.com\r\n\r\n", false, true, ""},

	// uri.md
	{"uri", "Quotes in URI", "GET /with_\"lovely\"_quotes?foo=\\\"bar\\\" HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"uri", "Query URL with question mark", "GET /test.cgi?foo=bar?baz HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"uri", "Host terminated by a query string", "GET http://hypnotoad.org?hail=all HTTP/1.1\r\n\r\n\r\n", false, true, whyHost},
	{"uri", "host:port terminated by a query string", "GET http://hypnotoad.org:1234?hail=all HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"uri", "Query URL with vertical bar character", "GET /test.cgi?query=| HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"uri", "host:port terminated by a space", "GET http://hypnotoad.org:1234 HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"uri", "Disallow UTF-8 in URI path in strict mode", "GET /\xce\xb4\xc2\xb6/\xce\xb4t/pope?q=1#narf HTTP/1.1\r\nHost: github.com\r\n\r\n", false, false, ""},
	{"uri", "Fragment in URI", "GET /forums/1/topics/2375?page=1#posts-17408 HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"uri", "Underscore in hostname", "CONNECT home_0.netscape.com:443 HTTP/1.0\r\nUser-agent: Mozilla/1.1N\r\nProxy-authorization: basic aGVsbG86d29ybGQ=\r\n\r\n", false, true, ""},
	{"uri", "host:port and basic auth", "GET http://a%12:b!&*$@hypnotoad.org:1234/toto HTTP/1.1\r\n\r\n", false, true, whyHost},
	{"uri", "Space in URI", "GET /foo bar/ HTTP/1.1\r\n\r\n", false, false, ""},

	// connection.md
	{"connection", "keep-alive: setting flag", "PUT /url HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", false, true, whyHost},
	{"connection", "Restarting when keep-alive is explicitly", "PUT /url HTTP/1.1\r\nConnection: keep-alive\r\n\r\nPUT /url HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", false, true, whyHost},
	{"connection", "No restart when keep-alive is off (1.0) and parser is in strict mode", "PUT /url HTTP/1.0\r\n\r\nPUT /url HTTP/1.1\r\n\r\n", false, false, ""},
	{"connection", "CRLF between requests, implicit keep-alive", "POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\n\r\nq=42\r\n\r\nGET / HTTP/1.1", false, true, ""},
	{"connection", "Setting flag on close", "PUT /url HTTP/1.1\r\nConnection: close\r\n\r\n", false, true, whyHost},
	{"connection", "CRLF between requests, explicit close (strict mode)", "POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\nConnection: close\r\n\r\nq=42\r\n\r\nGET / HTTP/1.1", false, false, whyClose},
	{"connection", "Parsing multiple tokens", "PUT /url HTTP/1.1\r\nConnection: close, token, upgrade, token, keep-alive\r\n\r\n", false, true, whyHost},
	{"connection", "Multiple tokens with folding", "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Something,\r\n Upgrade, ,Keep-Alive\r\nSec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\nSec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nOrigin: http://example.com\r\n\r\n", false, true, whyFold},
	{"connection", "Multiple tokens with folding and LWS", "GET /demo HTTP/1.1\r\nConnection: keep-alive, upgrade\r\nUpgrade: WebSocket\r\n\r\n", false, true, whyHost},
	{"connection", "Multiple tokens with folding, LWS, and CRLF", "GET /demo HTTP/1.1\r\nConnection: keep-alive, \r\n upgrade\r\nUpgrade: WebSocket\r\n\r\n", false, true, whyFold},
	{"connection", "upgrade: setting a flag and pausing", "PUT /url HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n", false, true, whyHost},
	{"connection", "Emitting part of body and pausing", "PUT /url HTTP/1.1\r\nConnection: upgrade\r\nContent-Length: 4\r\nUpgrade: ws\r\n\r\nabcd", false, true, whyHost},
	{"connection", "Upgrade GET request", "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nSec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\nSec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nOrigin: http://example.com\r\n\r\n", false, true, ""},
	{"connection", "Upgrade POST request", "POST /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: HTTP/2.0\r\nContent-Length: 15\r\n\r\nsweet post body", false, true, ""},

	// content-length.md
	{"content-length", "Content-Length with zeroes", "PUT /url HTTP/1.1\r\nContent-Length: 003\r\n\r\nabc", false, true, whyHost},
	{"content-length", "Content-Length with follow-up headers", "PUT /url HTTP/1.1\r\nContent-Length: 003\r\nOhai: world\r\n\r\nabc", false, true, whyHost},
	{"content-length", "Error on Content-Length overflow", "PUT /url HTTP/1.1\r\nContent-Length: 1000000000000000000000\r\n", false, false, ""},
	{"content-length", "Error on duplicate Content-Length", "PUT /url HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n", false, false, ""},
	{"content-length", "Error on simultaneous Content-Length and Transfer-Encoding: identity", "PUT /url HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: identity\r\n\r\n", false, false, ""},
	{"content-length", "Funky Content-Length with body", "GET /get_funky_content_length_body_hello HTTP/1.0\r\nconTENT-Length: 5\r\n\r\nHELLO", false, true, ""},
	{"content-length", "Spaces in Content-Length (surrounding)", "POST / HTTP/1.1\r\nContent-Length:  42 \r\n\r\n", false, true, whyHost},
	{"content-length", "Spaces in Content-Length #2", "POST / HTTP/1.1\r\nContent-Length: 4 2\r\n\r\n", false, false, ""},
	{"content-length", "Spaces in Content-Length #3", "POST / HTTP/1.1\r\nContent-Length: 13 37\r\n\r\n", false, false, ""},
	{"content-length", "Empty Content-Length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", false, false, ""},
	{"content-length", "Content-Length with CR instead of dash", "PUT /url HTTP/1.1\r\nContent\rLength: 003\r\n\r\nabc", false, false, ""},

	// transfer-encoding.md
	{"transfer-encoding", "Empty Transfer-Encoding with Content-Length", "POST /first HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello", false, false, ""},
	{"transfer-encoding", "chunked: parsing and setting flag", "PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "Parse chunks with lowercase size", "PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "Parse chunks with uppercase size", "PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "POST with Transfer-Encoding: chunked", "POST /post_chunked_all_your_base HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\nall your base are belong to us\r\n0\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "Two chunks and triple zero prefixed end chunk", "POST /two_chunks_mult_zero_end HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n000\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "Trailing headers", "POST /chunked_w_trailing_headers HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "Chunk extensions", "POST /chunked_w_unicorns_after_length HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ilovew3;somuchlove=aretheseparametersfor;another=withvalue\r\nhello\r\n6;blahblah;blah\r\n world\r\n0\r\n", false, true, whyHost},
	{"transfer-encoding", "No semicolon before chunk extensions", "POST /chunked_w_unicorns_after_length HTTP/1.1\r\nHost: localhost\r\nTransfer-encoding: chunked\r\n\r\n2 erfrferferf\r\naa\r\n0 rrrr\r\n\r\n", false, false, ""},
	{"transfer-encoding", "No extension after semicolon", "POST /chunked_w_unicorns_after_length HTTP/1.1\r\nHost: localhost\r\nTransfer-encoding: chunked\r\n\r\n2;\r\naa\r\n0\r\n\r\n", false, false, ""},
	{"transfer-encoding", "Chunk extensions quoting", "POST /chunked_w_unicorns_after_length HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ilovew3=\"I \\\"love\\\"; \\\\extensions\\\\\";somuchlove=\"aretheseparametersfor\";blah;foo=bar\r\nhello\r\n6;blahblah;blah\r\n world\r\n0\r\n", false, true, whyHost},
	{"transfer-encoding", "Unbalanced chunk extensions quoting", "POST /chunked_w_unicorns_after_length HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ilovew3=\"abc\";somuchlove=\"def; ghi\r\nhello\r\n6;blahblah;blah\r\n world\r\n0\r\n", false, false, ""},
	{"transfer-encoding", "Ignoring pigeons", "PUT /url HTTP/1.1\r\nTransfer-Encoding: pigeons\r\n\r\n", false, false, ""},
	{"transfer-encoding", "POST with Transfer-Encoding and Content-Length", "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\nAccept: */*\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nWorld", false, false, ""},
	{"transfer-encoding", "POST with empty Transfer-Encoding and Content-Length", "POST / HTTP/1.1\r\nHost: foo\r\nContent-Length: 10\r\nTransfer-Encoding:\r\nTransfer-Encoding:\r\nTransfer-Encoding:\r\n\r\n2\r\nAA\r\n0", false, false, ""},
	{"transfer-encoding", "POST with chunked before other transfer coding names", "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\nAccept: */*\r\nTransfer-Encoding: chunked, deflate\r\n\r\nWorld", false, false, ""},
	{"transfer-encoding", "POST with chunked and duplicate transfer-encoding", "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: deflate\r\n\r\nWorld", false, false, ""},
	{"transfer-encoding", "POST with chunked as last transfer-encoding", "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\nAccept: */*\r\nTransfer-Encoding: deflate, chunked\r\n\r\n5\r\nWorld\r\n0\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "POST with chunked as last transfer-encoding (multiple headers)", "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\nAccept: */*\r\nTransfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nWorld\r\n0\r\n\r\n", false, true, whyHost},
	{"transfer-encoding", "POST with chunkedchunked as transfer-encoding", "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\nAccept: */*\r\nTransfer-Encoding: chunkedchunked\r\n\r\n5\r\nWorld\r\n0\r\n\r\n", false, false, ""},
	{"transfer-encoding", "Missing last-chunk", "PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nfoo\r\n\r\n", false, false, ""},
	{"transfer-encoding", "Validate chunk parameters", "PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 \n  \r\nfoo\r\n\r\n", false, false, ""},
	{"transfer-encoding", "Chunk header not terminated by CRLF", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close \r\nTransfer-Encoding: chunked \r\n\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\nGET / HTTP/1.1 \r\nHost: a\r\nContent-Length: 5\r\n\r\n0\r\n", false, false, ""},
	{"transfer-encoding", "Chunk data not terminated by CRLF", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close \r\nTransfer-Encoding: chunked \r\n\r\n5\r\nABCDE0\r\n", false, false, ""},
	{"transfer-encoding", "Space after chunk header", "PUT /url HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na \r\n0123456789\r\n0\r\n\r\n", false, false, ""},

	// invalid.md
	{"invalid", "ICE protocol and GET method", "GET /music/sweet/music ICE/1.0\r\nHost: example.com\r\n\r\n", false, false, ""},
	{"invalid", "ICE protocol, but not really", "GET /music/sweet/music IHTTP/1.0\r\nHost: example.com\r\n\r\n", false, false, ""},
	{"invalid", "RTSP protocol and PUT method", "PUT /music/sweet/music RTSP/1.0\r\nHost: example.com\r\n\r\n", false, false, ""},
	{"invalid", "HTTP protocol and ANNOUNCE method", "ANNOUNCE /music/sweet/music HTTP/1.0\r\nHost: example.com\r\n\r\n", false, false, whyMethod},
	{"invalid", "Headers separated by CR", "GET / HTTP/1.1\r\nFoo: 1\rBar: 2\r\n\r\n", false, false, ""},
	{"invalid", "Headers separated by LF", "POST / HTTP/1.1\r\nHost: localhost:5000\r\nx:x\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n", false, false, ""},
	{"invalid", "Headers separated by dummy characters", "GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n", false, false, ""},
	{"invalid", "Empty headers separated by CR", "POST / HTTP/1.1\r\nConnection: Close\r\nHost: localhost:5000\r\nx:\rTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n", false, false, ""},
	{"invalid", "Empty headers separated by LF", "POST / HTTP/1.1\r\nHost: localhost:5000\r\nx:\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n", false, false, ""},
	{"invalid", "Invalid header token #1", "GET / HTTP/1.1\r\nFo@: Failure\r\n\r\n", false, false, ""},
	{"invalid", "Invalid header token #2", "GET / HTTP/1.1\r\nFoo\x01test: Bar\r\n\r\n", false, false, ""},
	{"invalid", "Invalid header token #3", "GET / HTTP/1.1\r\n: Bar\r\n\r\n", false, false, ""},
	// The edge rejects it too, for its missing Host: MKCOLA is a valid token.
	{"invalid", "Invalid method", "MKCOLA / HTTP/1.1\r\n\r\n", false, false, ""},
	{"invalid", "Illegal header field name line folding", "GET / HTTP/1.1\r\nname\r\n : value\r\n\r\n", false, false, ""},
	{"invalid", "Corrupted Connection header", "GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection\r\x1b\x35\xd5eep-Alive\r\nAccept-Encoding: gzip\r\n\r\n", false, false, ""},
	{"invalid", "Corrupted header name", "GET / HTTP/1.1\r\nHost: www.example.com\r\nX-Some-Header\r\x1b\x35\xd5eep-Alive\r\nAccept-Encoding: gzip\r\n\r\n", false, false, ""},
	{"invalid", "Missing CR between headers", "GET / HTTP/1.1\r\nHost: localhost\r\nDummy: x\nContent-Length: 23\r\n\r\nGET / HTTP/1.1\r\nDummy: GET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n", false, false, ""},
	{"invalid", "Invalid HTTP version", "GET / HTTP/5.6", false, false, ""},
	{"invalid", "Invalid space after start line", "GET / HTTP/1.1\r\n Host: foo", false, false, ""},
	{"invalid", "Only LFs present", "POST / HTTP/1.1\nTransfer-Encoding: chunked\nTrailer: Baz\r\nFoo: abc\nBar: def\n\n1\nA\n1;abc\nB\n1;def=ghi\nC\n1;jkl=\"mno\"\nD\n0\n\nBaz: ghi\n\n", false, false, ""},
	{"invalid", "Spaces before headers", "POST /hello HTTP/1.1\r\nHost: localhost\r\nFoo: bar\r\n Content-Length: 38\r\n\r\nGET /bye HTTP/1.1\r\nHost: localhost\r\n\r\n", false, false, ""},

	// finish.md
	{"finish", "It should be safe to finish after GET request", "GET / HTTP/1.1\r\n\r\n", true, true, whyHost},
	{"finish", "It should be unsafe to finish after incomplete PUT request", "PUT / HTTP/1.1\r\nContent-Length: 100\r\n", true, false, ""},
	{"finish", "It should be unsafe to finish inside of the header", "PUT / HTTP/1.1\r\nContent-Leng", true, false, ""},

	// pipelining.md
	{"pipelining", "Should parse multiple events", "POST /aaa HTTP/1.1\r\nContent-Length: 3\r\n\r\nAAA\r\nPUT /bbb HTTP/1.1\r\nContent-Length: 4\r\n\r\nBBBB\r\nPATCH /ccc HTTP/1.1\r\nContent-Length: 5\r\n\r\nCCCC", false, true, whyHost},
}

// edgeAccepts is the edge's decision on a whole input: the framer finds no
// error (an unfinished message is not one, unless the input is finished), and
// fasthttp's parser, which reads what the framer passed, accepts every
// complete message.
func edgeAccepts(in string, finish bool) bool {
	var f RequestFramer
	b := []byte(in)
	start := 0
	for off := 0; off < len(b); {
		n, done, err := f.Scan(b[off:])
		if err != nil {
			return false
		}
		off += n
		if done {
			var req fasthttp.Request
			msg := b[start+f.Skipped() : off]
			if req.Read(bufio.NewReader(bytes.NewReader(msg))) != nil {
				return false
			}
			start = off
		}
	}
	return !finish || f.Idle()
}

// fasthttpAccepts is the decision of fasthttp alone (the edge before the
// framer): it reads requests one after the other until the input ends; running
// out of input inside a request counts as an error only for finished inputs.
func fasthttpAccepts(in string, finish bool) bool {
	br := bufio.NewReader(strings.NewReader(in))
	for {
		if _, err := br.Peek(1); err != nil {
			return true
		}
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return !finish
			}
			return false
		}
	}
}

// TestLLHTTPCorpus runs llhttp's request fixtures through the framer: each
// case agrees with llhttp unless it names the deliberate difference.
func TestLLHTTPCorpus(t *testing.T) {
	agree, hostOnly, before := 0, 0, 0
	for _, c := range llhttpCorpus {
		got := edgeAccepts(c.in, c.finish)
		if (got == c.llhttp) != (c.why == "") {
			t.Errorf("%s.md %q: edge accepts=%v, llhttp accepts=%v, deliberate difference %q", c.file, c.name, got, c.llhttp, c.why)
		}
		if got == c.llhttp {
			agree++
		}
		if c.why == whyHost {
			hostOnly++
		}
		if fasthttpAccepts(c.in, c.finish) == c.llhttp {
			before++
		}
	}
	t.Logf("llhttp request corpus: the edge agrees on %d of %d cases (fasthttp alone: %d); %d of the differences are the Host rule alone", agree, len(llhttpCorpus), before, hostOnly)
}
