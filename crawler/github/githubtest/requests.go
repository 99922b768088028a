package githubtest

import (
	"regexp"
	"time"
)

// SetRateWindow sets how long a token's budget lasts before it is renewed
// (GitHub: an hour), so tests can watch tokens run out and reset in
// seconds. Budgets already running keep their reset time.
func (s *Server) SetRateWindow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.window = d
}

// endpoints name the REST endpoints by their documented path templates.
var endpoints = []struct {
	name string
	re   *regexp.Regexp
}{
	{"GET /events", regexp.MustCompile(`^/events$`)},
	{"GET /orgs/{org}/events", regexp.MustCompile(`^/orgs/[^/]+/events$`)},
	{"GET /users/{user}/events/public", regexp.MustCompile(`^/users/[^/]+/events/public$`)},
	{"GET /repos/{owner}/{repo}/events", regexp.MustCompile(`^/repos/[^/]+/[^/]+/events$`)},
	{"GET /repos/{owner}/{repo}/compare/{basehead}", regexp.MustCompile(`^/repos/[^/]+/[^/]+/compare/.+$`)},
	{"GET /repos/{owner}/{repo}/commits/{sha}", regexp.MustCompile(`^/repos/[^/]+/[^/]+/commits/[^/]+$`)},
	{"GET /repos/{owner}/{repo}/commits", regexp.MustCompile(`^/repos/[^/]+/[^/]+/commits$`)},
	{"GET /repos/{owner}/{repo}/branches/{branch}", regexp.MustCompile(`^/repos/[^/]+/[^/]+/branches/.+$`)},
	{"GET /repos/{owner}/{repo}/git/trees/{sha}", regexp.MustCompile(`^/repos/[^/]+/[^/]+/git/trees/[^/]+$`)},
	{"GET /repos/{owner}/{repo}/git/blobs/{sha}", regexp.MustCompile(`^/repos/[^/]+/[^/]+/git/blobs/[^/]+$`)},
	{"GET /repos/{owner}/{repo}", regexp.MustCompile(`^/repos/[^/]+/[^/]+$`)},
	{"GET /gists/public", regexp.MustCompile(`^/gists/public$`)},
	{"GET /gists/{id}", regexp.MustCompile(`^/gists/[^/]+$`)},
	{"POST /credentials/revoke", regexp.MustCompile(`^/credentials/revoke$`)},
	{"GET /raw/wiki/{owner}/{repo}/{page}", regexp.MustCompile(`^/raw/wiki/`)},
}

// RequestsByEndpoint returns how many requests reached each endpoint, named
// by its path template ("GET /repos/{owner}/{repo}/compare/{basehead}"),
// so a test can say what a unit of work cost and where. Paths no endpoint
// matches are counted under "other".
func (s *Server) RequestsByEndpoint() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for path, n := range s.requests {
		name := "other"
		for _, e := range endpoints {
			if e.re.MatchString(path) {
				name = e.name
				break
			}
		}
		out[name] += n
	}
	return out
}
