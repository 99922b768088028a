package revoke

import "github.com/leakwatch/leakwatch/crawler"

// GitHub is what the crawler pipeline calls at match time: this stops the
// build if the two drift apart.
var _ crawler.Revoker = (*GitHub)(nil)
