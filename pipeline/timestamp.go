package pipeline

import "time"

// AppendTimestamp appends t in UTC as 2006-01-02T15:04:05.000Z, the form
// logweave writes @timestamp in (what time.AppendFormat does, faster).
func AppendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	}
	dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	return dst
}

// ParseTimestamp parses an RFC 3339 time, the form logweave writes
// (2006-01-02T15:04:05.000Z) without time.Parse's generality.
func ParseTimestamp(s string) (time.Time, bool) {
	if len(s) == 24 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == '.' && s[23] == 'Z' {
		num := func(s string) int {
			n := 0
			for i := 0; i < len(s); i++ {
				if s[i] < '0' || s[i] > '9' {
					return -1
				}
				n = n*10 + int(s[i]-'0')
			}
			return n
		}
		y, mo, d, h, mi, sec, ms := num(s[0:4]), num(s[5:7]), num(s[8:10]), num(s[11:13]), num(s[14:16]), num(s[17:19]), num(s[20:23])
		if y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h < 24 && mi >= 0 && mi < 60 && sec >= 0 && sec < 60 && ms >= 0 {
			t := time.Date(y, time.Month(mo), d, h, mi, sec, ms*1e6, time.UTC)
			if t.Day() == d { // not 2024-02-31
				return t, true
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}
