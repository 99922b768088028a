package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/leakwatch/leakwatch/internal/platform/webhook"
)

func TestLoadConfigWebhooks(t *testing.T) {
	t.Parallel()
	k1, _ := webhook.GenerateSigningKey()
	k2, _ := webhook.GenerateSigningKey()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "defaults", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if len(c.WebhookSigningKeys) != 0 || len(c.WebhookAllowNets) != 0 || c.WebhookTimeout != 10*time.Second {
				t.Fatalf("defaults %+v %v %v", c.WebhookSigningKeys, c.WebhookAllowNets, c.WebhookTimeout)
			}
		}},
		{name: "keys and nets", env: map[string]string{
			"LEAKWATCH_WEBHOOK_SIGNING_KEY": k1.String() + "," + k2.String(),
			"LEAKWATCH_WEBHOOK_ALLOW_NETS":  "10.0.0.0/8, 127.0.0.1",
			"LEAKWATCH_WEBHOOK_TIMEOUT":     "3s",
		}, check: func(t *testing.T, c Config) {
			if len(c.WebhookSigningKeys) != 2 || c.WebhookSigningKeys[0].ID() != k1.ID() {
				t.Fatalf("keys %v", c.WebhookSigningKeys)
			}
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
			if len(c.WebhookAllowNets) != 2 || c.WebhookAllowNets[0] != want[0] || c.WebhookAllowNets[1] != want[1] || c.WebhookTimeout != 3*time.Second {
				t.Fatalf("nets %v timeout %v", c.WebhookAllowNets, c.WebhookTimeout)
			}
		}},
		{name: "bad key is not echoed", env: map[string]string{"LEAKWATCH_WEBHOOK_SIGNING_KEY": "whsk_c2VjcmV0LXZhbHVl"}, wantErr: "LEAKWATCH_WEBHOOK_SIGNING_KEY"},
		{name: "bad net", env: map[string]string{"LEAKWATCH_WEBHOOK_ALLOW_NETS": "intranet"}, wantErr: "LEAKWATCH_WEBHOOK_ALLOW_NETS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := LoadConfig(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "c2VjcmV0LXZhbHVl") {
					t.Fatalf("error echoes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
