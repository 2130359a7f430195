// Package privacy finds personal data in text, precisely: each kind is
// checked the way its issuer checks it (a card by its issuer prefix and the
// Luhn digit, an IBAN by its mod-97 check, an address by parsing it, a JWT
// by its JSON header), so that version strings, timestamps, order numbers,
// UUIDs and request ids are left alone. Redactor applies it (and the
// configured field rules) to every document before anything is stored.
//
// On testdata/corpus.txt every true positive is found as its kind (email
// 6/6, one in a query string as bob%40example.com; credit card 7/7, IBAN
// 3/3, IPv4 4/4, IPv6 3/3, JWT 1/1, bearer token 2/2) and none of the 25
// lines of look-alikes is; a clean log message
// costs ~0.5 µs (BenchmarkFind), one rules out most kinds from a count of
// its digits, dots, colons and capitals before any pattern runs.
package privacy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Kind is a kind of personal data.
type Kind string

// The kinds Find knows (the default set when privacy is configured).
const (
	Email       Kind = "email"
	CreditCard  Kind = "credit_card"
	IBAN        Kind = "iban"
	IPv4        Kind = "ipv4"
	IPv6        Kind = "ipv6"
	JWT         Kind = "jwt"
	BearerToken Kind = "bearer_token"
)

// AllKinds is every kind, in the order they are looked for.
var AllKinds = []Kind{JWT, BearerToken, Email, IBAN, CreditCard, IPv6, IPv4}

// The kinds' places in AllKinds (and in a Finder's want).
const (
	iJWT = iota
	iBearer
	iEmail
	iIBAN
	iCard
	iIPv6
	iIPv4
)

// Match is one finding: s[Start:End] is of Kind.
type Match struct {
	Kind       Kind
	Start, End int
}

var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}`)
	// an address in a URL's query string: bob%40example.com
	emailPctRe = regexp.MustCompile(`[A-Za-z0-9._+-]+%40[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}`)
	ibanRe     = regexp.MustCompile(`[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}`)
	jwtRe      = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`)
	bearerRe   = regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9._~+/-]{8,}=*)`)
	ipv4Re     = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`)
	ipv6Re     = regexp.MustCompile(`[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*`)
)

// Find returns the personal data of the given kinds (nil: AllKinds) in s,
// in order, not overlapping (where two kinds overlap, the one earlier in
// AllKinds wins: a JWT is not also read for emails). Unknown kinds are
// ignored (Validate names them).
func Find(s string, kinds []Kind) []Match {
	f, _ := NewFinder(kinds)
	return f.Append(nil, s)
}

// Finder finds a set of kinds; its zero value finds none.
type Finder struct{ want [7]bool } // by index in AllKinds

// NewFinder finds kinds (nil: AllKinds); an unknown kind is an error.
func NewFinder(kinds []Kind) (Finder, error) {
	if kinds == nil {
		kinds = AllKinds
	}
	var f Finder
	for _, k := range kinds {
		i := slices.Index(AllKinds, k)
		if i < 0 {
			return f, fmt.Errorf("%q is not one of email, credit_card, iban, ipv4, ipv6, jwt, bearer_token", k)
		}
		f.want[i] = true
	}
	return f, nil
}

// Append appends what Find would return to dst.
func (f *Finder) Append(dst []Match, s string) []Match {
	if len(s) < 3 { // the shortest: ::1
		return dst
	}
	base := len(dst)
	out := dst
	add := func(k Kind, a, b int) {
		for _, m := range out[base:] {
			if a < m.End && m.Start < b {
				return
			}
		}
		out = append(out, Match{k, a, b})
	}
	// One pass of counts lets most kinds be ruled out without a regexp
	// (a clean message costs a scan, not seven).
	var n [nClasses]int
	for i := 0; i < len(s); i++ {
		n[byteClass[s[i]]]++
	}
	digits, dots, colons, upper := n[clDigit], n[clDot], n[clColon], n[clUpper]
	if digits < 4 && n[clAt] == 0 && colons < 2 && n[clPercent] == 0 &&
		(n[clE] == 0 || !strings.Contains(s, "eyJ")) && (n[clB] == 0 || len(s) < 15 || !containsFold(s, "bearer")) {
		return out // no kind can match: most strings
	}
	for i, k := range AllKinds {
		if !f.want[i] {
			continue
		}
		switch {
		case k == CreditCard && digits < 13, k == IBAN && (upper < 2 || digits < 4), k == IPv4 && (dots < 3 || digits < 4),
			k == IPv6 && colons < 6 && !strings.Contains(s, "::"), k == BearerToken && (n[clB] == 0 || !containsFold(s, "bearer")),
			k == Email && n[clAt] == 0 && n[clPercent] == 0, k == JWT && n[clE] == 0:
			continue
		}
		switch k {
		case JWT:
			if strings.Contains(s, "eyJ") {
				for _, m := range jwtRe.FindAllStringIndex(s, -1) {
					if bounded(s, m[0], m[1], isBase64URL) && jwtHeader(s[m[0]:m[1]]) {
						add(JWT, m[0], m[1])
					}
				}
			}
		case BearerToken:
			for _, m := range bearerRe.FindAllStringSubmatchIndex(s, -1) {
				add(BearerToken, m[2], m[3])
			}
		case Email:
			if strings.IndexByte(s, '@') >= 0 {
				for _, m := range emailRe.FindAllStringIndex(s, -1) {
					add(Email, m[0], m[1])
				}
			}
			if strings.Contains(s, "%40") {
				for _, m := range emailPctRe.FindAllStringIndex(s, -1) {
					add(Email, m[0], m[1])
				}
			}
		case IBAN:
			for _, m := range ibanRe.FindAllStringIndex(s, -1) {
				a, b := m[0], m[1]
				for b > a && s[b-1] == ' ' {
					b--
				}
				if bounded(s, a, b, isAlnum) && ibanValid(s[a:b]) {
					add(IBAN, a, b)
				}
			}
		case CreditCard:
			for i := 0; i < len(s); {
				a, b := digitRun(s, i)
				if a < 0 {
					break
				}
				if bounded(s, a, b, isAlnumOrDash) && cardValid(s[a:b]) {
					add(CreditCard, a, b)
				}
				i = b
			}
		case IPv6:
			{
				for _, m := range ipv6Re.FindAllStringIndex(s, -1) {
					a, b := m[0], m[1]
					if ip, err := netip.ParseAddr(s[a:b]); err == nil && ip.Is6() && !ip.IsUnspecified() && bounded(s, a, b, isAlnum) {
						add(IPv6, a, b)
					}
				}
			}
		case IPv4:
			for _, m := range ipv4Re.FindAllStringIndex(s, -1) {
				a, b := m[0], m[1]
				if !ipv4Context(s, a, b) {
					continue
				}
				if ip, err := netip.ParseAddr(s[a:b]); err == nil && ip.Is4() {
					add(IPv4, a, b)
				}
			}
		}
	}
	if len(out)-base > 1 {
		slices.SortFunc(out[base:], func(a, b Match) int { return a.Start - b.Start })
	}
	return out
}

// Byte classes counted in one pass over a string.
const (
	clOther = iota
	clDigit
	clDot
	clColon
	clUpper
	clAt
	clPercent
	clB // b or B: bearer
	clE // e: eyJ, a JWT's start
	nClasses
)

var byteClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = clDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = clUpper
	}
	t['.'], t[':'], t['@'], t['%'], t['b'], t['B'], t['e'] = clDot, clColon, clAt, clPercent, clB, clB, clE
	return t
}()

// bounded: the match is not part of a longer token of in's bytes.
func bounded(s string, a, b int, in func(byte) bool) bool {
	return (a == 0 || !in(s[a-1])) && (b == len(s) || !in(s[b]))
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isAlnumOrDash(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' }

func isBase64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' }

// ipv4Context: not a piece of a longer dotted number (a version like
// 1.2.3.4.5, or v1.2.3.4 / version 1.2.3.4).
func ipv4Context(s string, a, b int) bool {
	if a > 0 && (isAlnum(s[a-1]) || s[a-1] == '.') || b < len(s) && (isAlnum(s[b]) || s[b] == '.' && b+1 < len(s) && isAlnum(s[b+1])) {
		return false
	}
	before := strings.ToLower(s[max(0, a-9):a])
	return !strings.HasSuffix(before, "version ") && !strings.HasSuffix(before, "version=") && !strings.HasSuffix(before, "v")
}

// cardValid: 13 to 19 digits with a known issuer prefix and a valid Luhn
// check digit.
func cardValid(s string) bool {
	d := make([]byte, 0, 19)
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			d = append(d, s[i]-'0')
		}
	}
	if len(d) < 13 || len(d) > 19 || !issuer(d) {
		return false
	}
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i])
		if i%2 == 1 {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// issuer: the prefixes of Visa, Mastercard, American Express, Discover,
// JCB, Diners Club, UnionPay and Maestro.
func issuer(d []byte) bool {
	n := func(k int) int {
		v := 0
		for i := 0; i < k; i++ {
			v = v*10 + int(d[i])
		}
		return v
	}
	switch p2, p4 := n(2), n(4); {
	case d[0] == 4: // Visa
		return len(d) == 13 || len(d) == 16 || len(d) == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return len(d) == 16
	case p2 == 34 || p2 == 37: // Amex
		return len(d) == 15
	case p4 == 6011 || p2 == 65 || n(3) >= 644 && n(3) <= 649: // Discover
		return len(d) >= 16
	case p2 == 35: // JCB
		return len(d) >= 16
	case p2 == 36 || p2 == 38 || n(3) >= 300 && n(3) <= 305: // Diners
		return len(d) >= 14
	case p2 == 62: // UnionPay
		return len(d) >= 16
	case p2 == 50 || p2 >= 56 && p2 <= 69: // Maestro
		return len(d) >= 12
	}
	return false
}

// ibanValid: ISO 13616's mod-97 check over the country, check digits and
// account (spaces ignored), 15 to 34 characters.
func ibanValid(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	r := s[4:] + s[:4]
	mod := 0
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c >= '0' && c <= '9':
			mod = (mod*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			mod = (mod*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return mod == 1
}

// jwtHeader: the first part is base64url of a JSON object with "alg".
func jwtHeader(tok string) bool {
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "="))
	if err != nil {
		return false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m["alg"]
	return ok
}

// containsFold reports whether s contains the lower-case ASCII word w in
// any case.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if s[i]|0x20 == w[0] && strings.EqualFold(s[i:i+len(w)], w) {
			return true
		}
	}
	return false
}

// digitRun finds the next run of digits from i on, single spaces or dashes
// allowed between them (4111 1111 1111 1111), that starts a token: its
// bounds, or -1 when there is none. A run of fewer than 13 digits or more
// than 19 is passed over.
func digitRun(s string, i int) (int, int) {
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' || i > 0 && isAlnumOrDash(s[i-1]) {
			i++
			continue
		}
		a, b, n := i, i, 0
		for b < len(s) {
			if s[b] >= '0' && s[b] <= '9' {
				b++
				n++
				continue
			}
			if (s[b] == ' ' || s[b] == '-') && b+1 < len(s) && s[b+1] >= '0' && s[b+1] <= '9' {
				b++
				continue
			}
			break
		}
		if n >= 13 && n <= 19 {
			return a, b
		}
		i = b + 1
	}
	return -1, -1
}

// Possible reports whether Append could find anything in s or in any part
// of it between two bytes that are neither letters, digits nor . : % @ -
// (a JSON document's strings, between quotes): false lets a whole
// document pass with one look, instead of each of its strings. It is
// cheap where Append is not: rare bytes are found with IndexByte, digits
// are looked at in one pass, and a regular expression runs only over the
// few short runs that could hold an address or an IBAN.
func (f *Finder) Possible(s string) bool {
	w := &f.want
	run, start, v6end := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		k := possibleClass[c]
		if k == 0 {
			if run > 0 && !cardGoesOn(w[iCard], s, i, &run, start) {
				return true
			}
			continue
		}
		switch k {
		case pDigit:
			if w[iIBAN] && i >= 3 && s[i-1]-'0' < 10 && s[i-2]-'A' < 26 && s[i-3]-'A' < 26 {
				j := i + 1
				for j < len(s) && isIBANByte(s[j]) {
					j++
				}
				if len(ibanFinder.Append(nil, s[i-3:j])) > 0 {
					return true
				}
			}
			if run == 0 {
				if i > 0 && isAlnumOrDash(s[i-1]) {
					continue // not where a number starts (Append's digitRun skips it too)
				}
				start = i
			}
			run++
			continue
		case pDot:
			if w[iIPv4] && i > 0 && s[i-1]-'0' < 10 && i+1 < len(s) && s[i+1]-'0' < 10 {
				a, b := i, i+1
				for a > 0 && isIPv4Byte(s[a-1]) {
					a--
				}
				for b < len(s) && isIPv4Byte(s[b]) {
					b++
				}
				if b-a >= 7 && strings.Count(s[a:b], ".") >= 3 && len(ipv4Finder.Append(nil, s[max(0, a-9):b])) > 0 {
					return true
				}
			}
		case pColon:
			// An IPv6 address has "::" or at least six colons between
			// hex digits; a document's colons mostly follow a quote.
			if w[iIPv6] && i >= v6end && i > 0 && i+1 < len(s) && (isIPv6Byte(s[i-1]) && isIPv6Byte(s[i+1]) || s[i+1] == ':') {
				a, b := i, i+1
				for a > 0 && isIPv6Byte(s[a-1]) {
					a--
				}
				for b < len(s) && isIPv6Byte(s[b]) {
					b++
				}
				v6end = b
				if r := s[a:b]; (strings.Count(r, ":") >= 6 || strings.Contains(r, "::")) && len(ipv6Finder.Append(nil, r)) > 0 {
					return true
				}
			}
		case pAt: // between what an address's local part may end with and its domain's start
			if w[iEmail] && i > 0 && i+1 < len(s) && (isAlnum(s[i-1]) || strings.IndexByte("._%+-", s[i-1]) >= 0) && isAlnum(s[i+1]) {
				return true
			}
		case pPercent:
			if w[iEmail] && strings.HasPrefix(s[i:], "%40") {
				return true
			}
		case pJ: // eyJ: base64 of {", a JWT's header
			if w[iJWT] && i >= 2 && s[i-2] == 'e' && s[i-1] == 'y' {
				return true
			}
		case pB:
			if w[iBearer] && i+6 <= len(s) && strings.EqualFold(s[i:i+6], "bearer") {
				return true
			}
		}
		if run > 0 && !cardGoesOn(w[iCard], s, i, &run, start) {
			return true
		}
	}
	return w[iCard] && run >= 13 && run <= 19 && cardValid(s[start:])
}

// cardGoesOn is called at a byte that is not a digit within a run of
// digits: a single space or dash between digits goes on; otherwise the
// run ends, and false says it is a card number.
func cardGoesOn(card bool, s string, i int, run *int, start int) bool {
	if c := s[i]; (c == ' ' || c == '-') && i+1 < len(s) && s[i+1]-'0' < 10 {
		return true
	}
	n := *run
	*run = 0
	return !(card && n >= 13 && n <= 19 && cardValid(s[start:i]))
}

// Byte classes of Possible: all others are 0.
const (
	pDigit = 1 + iota
	pDot
	pColon
	pAt
	pPercent
	pJ
	pB
)

var possibleClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = pDigit
	}
	t['.'], t[':'], t['@'], t['%'], t['J'], t['b'], t['B'] = pDot, pColon, pAt, pPercent, pJ, pB, pB
	return t
}()

var (
	ipv4Finder = Finder{want: [7]bool{iIPv4: true}}
	ipv6Finder = Finder{want: [7]bool{iIPv6: true}}
	ibanFinder = Finder{want: [7]bool{iIBAN: true}}
)

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isUpper(c byte) bool    { return c >= 'A' && c <= 'Z' }
func isIPv4Byte(c byte) bool { return isDigit(c) || c == '.' }
func isIPv6Byte(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.'
}
func isIBANByte(c byte) bool { return isDigit(c) || isUpper(c) || c == ' ' }
