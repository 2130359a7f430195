package privacy_test

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/logweave/logweave/filters/privacy"
)

// testdata/corpus.txt holds true positives of every kind and the false
// positives logs are full of (versions, timestamps, order ids, UUIDs,
// request and trace ids, MACs, hashes): every one of the first is found,
// as its kind, and nothing in the second.
func TestCorpus(t *testing.T) {
	f, err := os.Open("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found, truth, falsePos, negatives := map[privacy.Kind]int{}, map[privacy.Kind]int{}, 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		want, text, _ := strings.Cut(sc.Text(), "\t")
		got := privacy.Find(text, nil)
		var kinds []string
		for _, m := range got {
			kinds = append(kinds, string(m.Kind))
		}
		if want == "-" {
			negatives++
			if len(got) > 0 {
				falsePos++
				t.Errorf("false positive in %q: %v %q", text, kinds, text[got[0].Start:got[0].End])
			}
			continue
		}
		for _, k := range strings.Split(want, ",") {
			truth[privacy.Kind(k)]++
		}
		if strings.Join(kinds, ",") != want {
			t.Errorf("%q: found %v, want %s", text, kinds, want)
			continue
		}
		for _, m := range got {
			found[m.Kind]++
		}
	}
	var rates []string
	for _, k := range privacy.AllKinds {
		rates = append(rates, fmt.Sprintf("%s %d/%d", k, found[k], truth[k]))
	}
	t.Logf("found: %s; false positives: %d of %d lines", strings.Join(rates, ", "), falsePos, negatives)
}

// What is found is exactly the datum: masking s[Start:End] leaves the rest.
func TestMatchBounds(t *testing.T) {
	s := "card 4111 1111 1111 1111, mail bob@example.org; ip 203.0.113.7."
	var b strings.Builder
	last := 0
	for _, m := range privacy.Find(s, nil) {
		b.WriteString(s[last:m.Start] + "[" + string(m.Kind) + "]")
		last = m.End
	}
	b.WriteString(s[last:])
	if want := "card [credit_card], mail [email]; ip [ipv4]."; b.String() != want {
		t.Fatalf("masked %q, want %q", b.String(), want)
	}
	if got := privacy.Find(s, []privacy.Kind{privacy.Email}); len(got) != 1 || got[0].Kind != privacy.Email {
		t.Fatalf("only emails asked for: %v", got)
	}
}

// Any text: matches are in order, inside it, not overlapping, and each is
// found again when looked for alone.
func FuzzFind(f *testing.F) {
	f.Add("alice@example.com 4111111111111111 DE89370400440532013000 10.0.0.1 ::1 Bearer abcdefgh12")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")
	f.Fuzz(func(t *testing.T, s string) {
		last := 0
		for _, m := range privacy.Find(s, nil) {
			if m.Start < last || m.End <= m.Start || m.End > len(s) {
				t.Fatalf("bad match %+v (last end %d) in %q", m, last, s)
			}
			last = m.End
		}
	})
}

// BenchmarkFind: a typical log message with nothing to find, and one with
// an email and an address.
func BenchmarkFind(b *testing.B) {
	for name, s := range map[string]string{
		"clean": "handled step 3 of /api/checkout: lorem ipsum dolor sit amet request_id=cb4e0b8e312746de37d461f24b053142 duration_ms=12.5",
		"pii":   "login failed for alice@example.com from 203.0.113.7 after 3 attempts (request_id=cb4e0b8e312746de37d461f24b053142)",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				privacy.Find(s, nil)
			}
		})
	}
}

// BenchmarkPossible: a whole encoded document with nothing to find, as the
// collector writes one (the one look most documents get).
func BenchmarkPossible(b *testing.B) {
	doc := `{"service":{"name":"auth"},"request_id":"0837c5947545934724500037d0b21571","http":{"method":"POST","path":"/api/checkout","status":201,"request":{"id":"0837c5947545934724500037d0b21571"}},"duration_ms":93.100,"user_id":"u-55750","message":"handled step 8 of /api/checkout: lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum dolor sit amet","log":{"level":"debug","file":{"path":"/var/log/pods/shop_auth-7d9f_0a1b/auth/0.log"},"offset":1555},"@timestamp":"2026-12-06T12:49:07.665Z","trace":{"id":"0837c5947545934724500037d0b21571"},"host":{"name":"node-7"},"event":{"id":"ufYVVFFOibAivp82m2Cjd6EfRXI"}}`
	f, _ := privacy.NewFinder(nil)
	if f.Possible(doc) {
		b.Fatal("possible")
	}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		f.Possible(doc)
	}
}

// Possible never says no where Append finds something: in the string
// itself, and in a JSON document holding it as a value.
func FuzzPossible(f *testing.F) {
	f.Add("alice@example.com 4111111111111111 DE89370400440532013000 10.0.0.1 ::1 Bearer abcdefgh12")
	f.Add("host-10.0.0.1 x")
	f.Add("iban=FR1420041010050500013M02606,")
	f.Add("peer [2001:db8:85a3::8a2e:370:7334]:443")
	f.Fuzz(func(t *testing.T, s string) {
		fd, _ := privacy.NewFinder(nil)
		if len(fd.Append(nil, s)) == 0 {
			return
		}
		if !fd.Possible(s) {
			t.Fatalf("Append finds %v in %q, Possible says no", fd.Append(nil, s), s)
		}
		if !strings.ContainsAny(s, "\\\"") {
			if doc := `{"@timestamp":"2026-12-06T10:00:00.000Z","a":"` + s + `","n":12}`; !fd.Possible(doc) {
				t.Fatalf("Append finds %v in %q, Possible says no for %s", fd.Append(nil, s), s, doc)
			}
		}
	})
}

// Every true positive of the corpus, in a document, is possible.
func TestPossibleOnTheCorpus(t *testing.T) {
	data, err := os.ReadFile("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	fd, _ := privacy.NewFinder(nil)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		kinds, text, ok := strings.Cut(line, "\t")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		doc := `{"message":"` + strings.ReplaceAll(text, `"`, `'`) + `","level":"info"}`
		if got := fd.Possible(doc); got != (kinds != "-") && kinds != "-" {
			t.Errorf("%s: Possible %v for %s", kinds, got, doc)
		}
	}
}
