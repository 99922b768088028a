package main

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeListsEverySetting keeps the README's settings table true.
func TestReadmeListsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(b), "| `"+s.env+"` |") {
			t.Errorf("README.md settings table lacks %s", s.env)
		}
	}
}
