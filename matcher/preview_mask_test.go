package matcher

import (
	"strings"
	"testing"
)

// TestPreviewMasksUnregisteredSecrets: a registered key's preview shows its
// line, and real lines carry other secrets next to it. None of them may
// reach the preview (which goes to the database, Slack and the dashboard),
// while the names around them stay readable.
func TestPreviewMasksUnregisteredSecrets(t *testing.T) {
	t.Parallel()
	const (
		keyID = "AKIAZ7Q2LXK4VN3PB8RT"
		gh    = ghToken
	)
	tests := []struct {
		name       string
		registered string
		line       string
		others     []string // unregistered secrets on the line
		keep       []string // context that must stay readable
	}{
		{"AWS ID and secret, credentials file", keyID,
			"aws_access_key_id = " + keyID + " aws_secret_access_key = Xk9f2Lq8Zr7Vb3Nm1Pw6Ty4Hj0Dg5Sa2Ce8Uo3I",
			[]string{"Xk9f2Lq8Zr7Vb3Nm1Pw6Ty4Hj0Dg5Sa2Ce8Uo3I"}, []string{"aws_secret_access_key"}},
		{"AWS ID and secret with slashes, CSV export", keyID,
			"deploy-bot," + keyID + ",wJalrXUtnFEMI/K7MDENG/bPxRfiCY9q2Lk7Zp3X,Active",
			[]string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCY9q2Lk7Zp3X"}, []string{"deploy-bot", "Active"}},
		{"AWS ID and secret, JSON", keyID,
			`{"AccessKeyId": "` + keyID + `", "SecretAccessKey": "Ab3dEf9hIj2lMn5pQr8tUv1xYz4BcD7fGh0jKl6N", "UserName": "ci"}`,
			[]string{"Ab3dEf9hIj2lMn5pQr8tUv1xYz4BcD7fGh0jKl6N"}, []string{"SecretAccessKey", "UserName"}},
		{"user:password@ in a URL", gh,
			"git clone https://deploy:Hunt3r-2-Horse@git.acme.example/r.git && export GH=" + gh,
			[]string{"Hunt3r-2-Horse"}, []string{"git clone", "git.acme.example"}},
		{"database URL and password=", gh,
			"DB_PASSWORD=correcthorse42 DATABASE_URL=postgres://app:s3cr3tPw@db:5432/app GITHUB_TOKEN=" + gh,
			[]string{"correcthorse42", "s3cr3tPw"}, []string{"DB_PASSWORD=", "GITHUB_TOKEN="}},
		{"Authorization: Bearer", gh,
			`curl -H "Authorization: Bearer ya29.a0AfH6SMBx3kQ9vLm2Zp8Rt5Yw1Nc7Hq4Js6Ud0Fg" -H "X-Token: ` + gh + `"`,
			[]string{"a0AfH6SMBx3kQ9vLm2Zp8Rt5Yw1Nc7Hq4Js6Ud0Fg"}, []string{"Authorization: Bearer"}},
		{"Basic authorization", gh,
			`Authorization: Basic ZGVwbG95Omh1bnRlcjI= // ` + gh,
			[]string{"ZGVwbG95Omh1bnRlcjI"}, []string{"Authorization"}},
		{"JWT", gh,
			"session=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c gh=" + gh,
			[]string{"eyJzdWIiOiIxMjM0NTY3ODkwIn0", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"}, []string{"gh="}},
		{"PEM key in a service-account JSON line", gh,
			`{"private_key_id": "4f1c2a9be07d33c8a1f5e6b2d9c0a7e3f4b5c6d7", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n", "token": "` + gh + `"}`,
			[]string{"4f1c2a9be07d33c8a1f5e6b2d9c0a7e3f4b5c6d7", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"}, []string{"BEGIN PRIVATE KEY"}},
		{"hex secret", gh,
			"SLACK_SIGNING_SECRET=8f742231b10e8888abcd99yyyzzz85a5 WEBHOOK=9a3c5e7f1b2d4f6a8c0e2a4c6e8f0a1b3c5d7e9f GH=" + gh,
			[]string{"8f742231b10e8888abcd99yyyzzz85a5", "9a3c5e7f1b2d4f6a8c0e2a4c6e8f0a1b3c5d7e9f"}, []string{"SLACK_SIGNING_SECRET="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set := testSet(t, tt.registered)
			got := set.Scan([]byte("# config\n" + tt.line + "\nnext line\n"))
			if len(got) != 1 {
				t.Fatalf("want 1 finding, got %d", len(got))
			}
			p := got[0].Preview
			for _, secret := range append(tt.others, tt.registered[4:]) {
				for i := 0; i+6 <= len(secret); i++ {
					if strings.Contains(p, secret[i:i+6]) {
						t.Fatalf("preview %q shows %q of an unmasked secret", p, secret[i:i+6])
					}
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(p, k) {
					t.Errorf("preview %q lost the context %q", p, k)
				}
			}
		})
	}
}

// TestPreviewMaskKeepsProse: ordinary code and prose around a key are not
// masked.
func TestPreviewMaskKeepsProse(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"const token = process.env.GITHUB_TOKEN || ",
		"see https://github.com/acme/deploy-tools/blob/main/README.md for setup",
		"func (c *Client) RefreshAccessToken(ctx context.Context) error {",
		"AWS_SECRET_ACCESS_KEY and AWS_ACCESS_KEY_ID are read from the environment",
	} {
		if got := maskPreview(s, false, false); got != s {
			t.Errorf("maskPreview(%q) = %q", s, got)
		}
	}
}
