package client

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadKeysCSV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		csv    string
		want   []Key
		errHas string
	}{
		{
			name: "every column",
			csv: "name,environment,provider,owner,notes,tags,max_age_days,revocation_url\n" +
				"db password,production,postgres,data team,read-write on orders,db|prod,30,https://hooks.example/revoke\n",
			want: []Key{{Name: "db password", Environment: "production", Provider: "postgres", Owner: "data team",
				Notes: "read-write on orders", Tags: []string{"db", "prod"}, MaxAgeDays: 30, RevocationURL: "https://hooks.example/revoke"}},
		},
		{
			name: "header in any case and order, spaces trimmed",
			csv:  " Provider , NAME\naws, deploy \ngithub,ci\n",
			want: []Key{{Name: "deploy", Provider: "aws"}, {Name: "ci", Provider: "github"}},
		},
		{name: "header only", csv: "name\n", errHas: "one row per secret"},
		{name: "unknown column", csv: "name,secret\na,b\n", errHas: `unknown column "secret"`},
		{name: "no name column", csv: "provider\naws\n", errHas: "a name column is required"},
		{name: "bad max age", csv: "name,max_age_days\na,30\nb,thirty\n", errHas: "row 3: max_age_days"},
		{name: "ragged row", csv: "name,provider\na\n", errHas: "wrong number of fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadKeysCSV(strings.NewReader(tt.csv))
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err %v, want one containing %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
