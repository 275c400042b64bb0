package textstats

import (
	"strings"
	"testing"
)

func TestCount(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want Stats
	}{
		{"empty", "", Stats{}},
		{"one line with newline", "hello world\n", Stats{Lines: 1, Words: 2, Chars: 12}},
		{"no final newline", "a b\nc", Stats{Lines: 2, Words: 3, Chars: 5}},
		{"extra spaces", "  a \t b  \n\n", Stats{Lines: 2, Words: 2, Chars: 11}},
		{"unicode", "héllo wörld\n", Stats{Lines: 1, Words: 2, Chars: 12}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Count(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Count(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	got := Stats{1, 2, 3}.Add(Stats{10, 20, 30})
	if want := (Stats{11, 22, 33}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
}
