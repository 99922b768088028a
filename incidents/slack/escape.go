package slack

import (
	"strings"
	"unicode/utf8"
)

// MaxField bounds one attacker-controlled value in a message.
const MaxField = 300

var mrkdwnEscaper = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	// Slack links bare URLs; a zero-width space after the scheme keeps
	// attacker text from becoming a clickable link.
	"://", ":\u200b//",
	// Line breaks would let one field forge the lines after it.
	"\r", " ", "\n", " ",
)

// Escape makes text inert in Slack mrkdwn: &, < and > (which form links,
// <!here>/<!channel> broadcasts and <@U…> mentions) become entities, bare
// URLs are broken, line breaks are flattened, and the result is at most max
// runes (MaxField when max ≤ 0), cut with "…".
func Escape(s string, max int) string {
	if max <= 0 {
		max = MaxField
	}
	s = strings.ToValidUTF8(s, "")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return mrkdwnEscaper.Replace(s)
}

// escapeCode is Escape for text shown between backticks.
func escapeCode(s string) string {
	return Escape(strings.ReplaceAll(s, "`", "'"), 200)
}

// linkURL returns u made safe for the <url|text> syntax, or "" unless it is
// an absolute http(s) URL.
func linkURL(u string) string {
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return ""
	}
	if len(u) > 2000 {
		return ""
	}
	return strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C", " ", "%20", "\n", "", "\r", "").Replace(u)
}

// plain bounds text for plain_text objects (headers, buttons), which Slack
// never parses for mentions or links.
func plain(s string, max int) string {
	s = strings.ToValidUTF8(strings.Join(strings.Fields(s), " "), "")
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}
