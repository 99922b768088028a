package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/leakwatch/leakwatch/crawler/paste"
	"github.com/leakwatch/leakwatch/incidents"
	"github.com/leakwatch/leakwatch/incidents/slack"
	"github.com/leakwatch/leakwatch/internal/auth"
	"github.com/leakwatch/leakwatch/internal/keys"
)

// onboardingStep is one step of an empty organisation's checklist.
type onboardingStep struct {
	ID, Text, Href, Hint string
	Done                 bool
}

// sourceStatus is one source's health at a glance.
type sourceStatus struct {
	Name, State, Detail string
	Failing             bool
}

// overviewPage is the dashboard's home: the incident figures of the last
// 30 days as charts, keys past their rotation policy and source health; an
// organisation without incidents sees its onboarding checklist instead.
func (s *Server) overviewPage(c echo.Context) error {
	m, _ := CurrentMember(c)
	ctx := c.Request().Context()
	st, err := s.incidents.Stats(ctx, m.OrgID, 30)
	if err != nil {
		return err
	}
	first, err := s.incidents.Queue(ctx, m.OrgID, incidents.QueueParams{Limit: 1})
	if err != nil {
		return err
	}
	stale, staleN, err := s.keys.Stale(ctx, m.OrgID, 5)
	if err != nil {
		return err
	}
	sources, err := s.sourceStatuses(ctx, m.OrgID)
	if err != nil {
		return err
	}
	data := map[string]any{"Stats": st, "Stale": stale, "StaleCount": staleN, "Sources": sources}
	if len(first.Items) == 0 {
		steps, err := s.onboarding(ctx, m)
		if err != nil {
			return err
		}
		data["Onboarding"] = steps
		return s.render(c, http.StatusOK, "overview.html", "Overview", data)
	}

	open := 0
	var sev []bar
	for _, v := range []incidents.Severity{incidents.SeverityCritical, incidents.SeverityHigh, incidents.SeverityMedium, incidents.SeverityLow} {
		n := st.OpenBySeverity[string(v)]
		open += n
		sev = append(sev, bar{Label: string(v), Value: float64(n), Text: fmt.Sprint(n), Class: string(v)})
	}
	var phase []bar
	for _, p := range incidents.Phases {
		if !p.Open() {
			continue
		}
		n := st.OpenByPhase[string(p)]
		phase = append(phase, bar{Label: string(p), Value: float64(n), Text: fmt.Sprint(n)})
	}
	// Every day of the window, zeros included: a quiet day is data too.
	perDay := map[string]int{}
	for _, d := range st.OpenedPerDay {
		perDay[d.Day] = d.Count
	}
	var days []bar
	today := time.Now().UTC()
	for i := st.Days - 1; i >= 0; i-- {
		d := today.AddDate(0, 0, -i).Format("2006-01-02")
		days = append(days, bar{Label: d, Value: float64(perDay[d]), Text: fmt.Sprint(perDay[d])})
	}
	var times []bar
	for _, t := range []struct {
		label string
		v     *float64
	}{
		{"detect p50", st.DetectP50}, {"detect p90", st.DetectP90},
		{"contain p50", st.ContainP50}, {"contain p90", st.ContainP90},
		{"rotate p50", st.RotateP50}, {"rotate p90", st.RotateP90},
	} {
		b := bar{Label: t.label, Text: seconds(t.v), Class: "muted"}
		if t.v != nil {
			b.Value, b.Class = *t.v, ""
		}
		times = append(times, b)
	}
	auto := "—"
	if st.Opened > 0 {
		auto = fmt.Sprintf("%d%%", (st.AutoContained*100+st.Opened/2)/st.Opened)
	}
	data["Open"] = open
	data["AutoShare"] = auto
	data["SeverityChart"] = hbarChart("chart-severity", "Open incidents by severity", sev)
	data["PhaseChart"] = hbarChart("chart-phase", "Open incidents by phase", phase)
	data["DaysChart"] = columnChart("chart-opened", fmt.Sprintf("Incidents opened per day, last %d days", st.Days), days)
	data["TimesChart"] = hbarChart("chart-times", "Time to detect, contain and rotate (p50 and p90)", times)
	data["SeverityBars"], data["PhaseBars"], data["DayBars"], data["TimeBars"] = sev, phase, days, times
	weeks, err := s.trends.get(ctx, m.OrgID, s.incidents.TimesByWeek)
	if err != nil {
		return err
	}
	data["Weeks"], data["TrendCharts"] = weeks, trendCharts(weeks)
	return s.render(c, http.StatusOK, "overview.html", "Overview", data)
}

// onboarding is the checklist of an organisation that has seen no
// incident yet, each step ticked from the organisation's real state.
func (s *Server) onboarding(ctx context.Context, m Member) ([]onboardingStep, error) {
	ks, err := s.keys.List(ctx, m.OrgID, keys.ListParams{Limit: 1})
	if err != nil {
		return nil, err
	}
	slackDone := false
	if s.slack != nil {
		conn, err := s.slack.Store().Connection(ctx, m.OrgID)
		if err != nil && !errors.Is(err, slack.ErrNotConnected) {
			return nil, err
		}
		slackDone = conn.Mode != slack.ModeNone
	}
	eps, err := s.incidents.RevocationEndpoints(ctx, m.OrgID)
	if err != nil {
		return nil, err
	}
	members, err := s.auth.Members(ctx, m.OrgID)
	if err != nil {
		return nil, err
	}
	invited := len(members) > 1
	if !invited && m.Role.AtLeast(auth.RoleAdmin) {
		is, err := s.auth.Invitations(ctx, m.OrgID, auth.Page{})
		if err != nil {
			return nil, err
		}
		invited = len(is) > 0
	}
	return []onboardingStep{
		{ID: "step-key", Text: "Register a key", Href: "/keys", Done: len(ks) > 0},
		{ID: "step-slack", Text: "Connect Slack", Href: "/integrations#slack", Done: slackDone},
		{ID: "step-endpoint", Text: "Set a revocation endpoint", Href: "/integrations#endpoints", Done: len(eps) > 0},
		{ID: "step-invite", Text: "Invite a teammate", Href: "/members", Done: invited},
	}, nil
}

// sourceStatuses is every source's health at a glance: failing is the
// last poll failed, or no success for ten poll intervals.
func (s *Server) sourceStatuses(ctx context.Context, orgID int64) ([]sourceStatus, error) {
	var out []sourceStatus
	now := time.Now()
	if s.github != nil {
		h, err := s.github.Health(ctx, orgID)
		if err != nil {
			return nil, err
		}
		for _, f := range h.Feeds {
			st := sourceStatus{Name: "GitHub " + f.Feed, State: "ok"}
			switch {
			case f.LastSuccessAt == nil:
				st.State, st.Detail, st.Failing = "no success yet", f.LastError, f.LastError != ""
			case f.LastErrorAt != nil && f.LastErrorAt.After(*f.LastSuccessAt):
				st.State, st.Detail, st.Failing = "failing", f.LastError, true
			case f.PollIntervalS > 0 && now.Sub(*f.LastSuccessAt) > 10*time.Duration(f.PollIntervalS)*time.Second:
				st.State, st.Detail, st.Failing = "stalled", "last success "+f.LastSuccessAt.UTC().Format(time.RFC3339), true
			default:
				st.Detail = "last success " + f.LastSuccessAt.UTC().Format(time.RFC3339)
			}
			out = append(out, st)
		}
	}
	if s.paste != nil {
		hs, err := s.paste.Health(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			st := sourceStatus{Name: h.Source, State: h.State, Detail: h.LastError,
				Failing: h.State == paste.StateFailing || h.State == paste.StateUnauthorised}
			out = append(out, st)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Failing && !out[j].Failing })
	return out, nil
}

// bannerTTL is how long the site-wide failing-source banner's answer is
// reused: source health takes several queries, and every page shows it.
const bannerTTL = 30 * time.Second

// bannerCache remembers, per organisation, which sources are failing.
type bannerCache struct {
	mu  sync.Mutex
	byO map[int64]bannerEntry
}

type bannerEntry struct {
	at      time.Time
	failing []string
}

// failingSources names the sources failing for the organisation, for the
// banner every page shows: "nothing found" must never look like "not
// looking". An error reading health is itself shown as a failure.
func (s *Server) failingSources(ctx context.Context, orgID int64) []string {
	if s.github == nil && s.paste == nil {
		return nil
	}
	s.banner.mu.Lock()
	if e, ok := s.banner.byO[orgID]; ok && time.Since(e.at) < bannerTTL {
		s.banner.mu.Unlock()
		return e.failing
	}
	s.banner.mu.Unlock()
	var failing []string
	sts, err := s.sourceStatuses(ctx, orgID)
	if err != nil {
		s.logger.Error("read source health for the banner", slog.Any("error", err))
		failing = []string{"source health (unreadable)"}
	}
	for _, st := range sts {
		if st.Failing {
			failing = append(failing, st.Name+" ("+st.State+")")
		}
	}
	s.banner.mu.Lock()
	if s.banner.byO == nil {
		s.banner.byO = map[int64]bannerEntry{}
	}
	s.banner.byO[orgID] = bannerEntry{at: time.Now(), failing: failing}
	s.banner.mu.Unlock()
	return failing
}

// trendCharts draws time to detect, contain and rotate per week, p50 and
// p90 each: whether the team is getting faster.
func trendCharts(weeks []incidents.WeekTimes) []template.HTML {
	labels := make([]string, len(weeks))
	for i, w := range weeks {
		labels[i] = w.Week
	}
	pick := func(f func(incidents.WeekTimes) *float64) []*float64 {
		out := make([]*float64, len(weeks))
		for i, w := range weeks {
			out[i] = f(w)
		}
		return out
	}
	var out []template.HTML
	for _, m := range []struct {
		id, name string
		p50, p90 func(incidents.WeekTimes) *float64
	}{
		{"detect", "detect", func(w incidents.WeekTimes) *float64 { return w.DetectP50 }, func(w incidents.WeekTimes) *float64 { return w.DetectP90 }},
		{"contain", "contain", func(w incidents.WeekTimes) *float64 { return w.ContainP50 }, func(w incidents.WeekTimes) *float64 { return w.ContainP90 }},
		{"rotate", "rotate", func(w incidents.WeekTimes) *float64 { return w.RotateP50 }, func(w incidents.WeekTimes) *float64 { return w.RotateP90 }},
	} {
		out = append(out, lineChart("chart-trend-"+m.id, "Time to "+m.name+" per week (p50 and p90)", labels,
			[]series{{Name: m.name + " p50", Values: pick(m.p50)}, {Name: m.name + " p90", Values: pick(m.p90), Dashed: true}}, seconds))
	}
	return out
}

// trendTTL is how long an organisation's weekly response times are
// reused: twelve weeks of percentiles barely move in minutes, and the
// query costs as much as the rest of the overview (BenchmarkDashboard).
const trendTTL = 5 * time.Minute

// trendCache remembers each organisation's weekly response times.
type trendCache struct {
	mu  sync.Mutex
	byO map[int64]trendEntry
}

type trendEntry struct {
	at    time.Time
	weeks []incidents.WeekTimes
}

func (tc *trendCache) get(ctx context.Context, orgID int64, load func(context.Context, int64, int) ([]incidents.WeekTimes, error)) ([]incidents.WeekTimes, error) {
	tc.mu.Lock()
	if e, ok := tc.byO[orgID]; ok && time.Since(e.at) < trendTTL {
		tc.mu.Unlock()
		return e.weeks, nil
	}
	tc.mu.Unlock()
	weeks, err := load(ctx, orgID, 12)
	if err != nil {
		return nil, err
	}
	tc.mu.Lock()
	if tc.byO == nil {
		tc.byO = map[int64]trendEntry{}
	}
	tc.byO[orgID] = trendEntry{at: time.Now(), weeks: weeks}
	tc.mu.Unlock()
	return weeks, nil
}
