package matcher

import (
	"errors"
	"testing"
)

func TestContainsSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want bool
	}{
		{"sk_live_51HqLyjWDarjtT1zdp7dcXq9Zx", true},
		{"rotated; the old value was ghp_R4nd0mT0k3nV4lu3F0rT35t1ngAbCdEf01", true},
		{"AKIAIOSFODNN7EXAMPLF", true},
		{"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", true},
		{"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX2J5dGVz", true},
		{"cloned from https://deploy:Sup3rS3cretPw@git.acme.example/repo", true},
		{"-----BEGIN RSA PRIVATE KEY-----", true},
		{"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", true},
		{"deploy-bot", false},
		{"payments-team", false},
		{"rotated in the AWS console; see https://wiki.acme.example/runbooks/aws-keys", false},
		{"src/main/java/com/example/Application.java", false},
		{"https://git.acme.example/repo (user deploy@acme.example)", false},
		{"env file committed to a public repository on 2026-12-01", false},
		{"ticket SEC-12345 / INC0012345", false},
	}
	for _, tt := range tests {
		if got := ContainsSecret(tt.text); got != tt.want {
			t.Errorf("ContainsSecret(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
	if err := CheckFreeText("note", tests[0].text); !errors.Is(err, ErrPlaintextSecret) || err.Error() != "note looks like it holds a plaintext secret; never send the secret" {
		t.Errorf("CheckFreeText = %v", err)
	}
}
