// Package textstats counts lines, words and characters of text.
package textstats

import (
	"bufio"
	"io"
	"unicode"
)

// Stats of one text. Chars counts Unicode code points, not bytes.
type Stats struct {
	Lines int `json:"lines"`
	Words int `json:"words"`
	Chars int `json:"chars"`
}

// Add returns the sum of two stats.
func (s Stats) Add(o Stats) Stats {
	return Stats{Lines: s.Lines + o.Lines, Words: s.Words + o.Words, Chars: s.Chars + o.Chars}
}

// Count reads r to the end. Lines are counted like wc -l (newline
// characters), plus one for a last line without a newline.
func Count(r io.Reader) (Stats, error) {
	var s Stats
	br := bufio.NewReader(r)
	inWord := false
	var last rune = '\n'
	for {
		c, _, err := br.ReadRune()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s, err
		}
		s.Chars++
		if c == '\n' {
			s.Lines++
		}
		if unicode.IsSpace(c) {
			inWord = false
		} else if !inWord {
			inWord = true
			s.Words++
		}
		last = c
	}
	if last != '\n' {
		s.Lines++
	}
	return s, nil
}
