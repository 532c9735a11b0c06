package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Policy is what a promotion to a channel needs. Policies have a history
// like channels: every set or clear is a new entry; the newest is in force.
type Policy struct {
	ID      int64  `json:"id"`
	Image   string `json:"image"`
	Channel string `json:"channel"`
	// Require are evidence kinds a version needs a passing (and no failed)
	// record of.
	Require []string `json:"require"`
	// From is the channel that must hold the version being promoted.
	From string `json:"from,omitempty"`
	// MinAge is how long the version must have been on From (or, without
	// From, registered) before it may be promoted.
	MinAge Duration `json:"min_age"`
	// Cleared marks an entry that removed the channel's policy.
	Cleared bool      `json:"cleared,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Time    time.Time `json:"time"`
}

// Duration is a time.Duration that reads and writes as "72h0m0s" in JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	x, err := time.ParseDuration(s)
	*d = Duration(x)
	return err
}

// Empty says the policy asks nothing.
func (p *Policy) Empty() bool { return len(p.Require) == 0 && p.From == "" && p.MinAge == 0 }

// Describe says what the policy asks, in one line.
func (p *Policy) Describe() string {
	if p.Cleared || p.Empty() {
		return "none"
	}
	var parts []string
	if len(p.Require) > 0 {
		parts = append(parts, "passing evidence of "+strings.Join(p.Require, ", "))
	}
	if p.From != "" {
		parts = append(parts, "held by "+p.From)
	}
	if p.MinAge > 0 {
		on := "registered"
		if p.From != "" {
			on = "on " + p.From
		}
		parts = append(parts, fmt.Sprintf("%s for at least %s", on, p.MinAge))
	}
	return strings.Join(parts, "; ")
}

// SetPolicy records p as channel's policy (a new history entry).
func (c *Catalog) SetPolicy(ctx context.Context, p Policy) (*Policy, error) {
	p.Cleared = false
	if err := checkPolicy(&p); err != nil {
		return nil, err
	}
	if p.Empty() {
		return nil, invalid("a policy for %s needs --require, --from or --min-age (to remove one, clear it)", p.Channel)
	}
	return c.appendPolicy(ctx, p)
}

// ClearPolicy removes channel's policy (recorded as a history entry).
func (c *Catalog) ClearPolicy(ctx context.Context, image, channel, actor, reason string) (*Policy, error) {
	p := Policy{Image: image, Channel: channel, Cleared: true, Actor: actor, Reason: reason}
	if err := checkPolicy(&p); err != nil {
		return nil, err
	}
	return c.appendPolicy(ctx, p)
}

func checkPolicy(p *Policy) error {
	if err := ValidName("image", p.Image); err != nil {
		return err
	}
	if err := ValidName("channel", p.Channel); err != nil {
		return err
	}
	seen := map[string]bool{}
	var kinds []string
	for _, k := range p.Require {
		if err := ValidName("evidence kind", k); err != nil {
			return err
		}
		if !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	p.Require = kinds
	if p.From != "" {
		if err := ValidName("channel", p.From); err != nil {
			return err
		}
		if p.From == p.Channel {
			return invalid("--from %s is the channel the policy is for", p.From)
		}
	}
	if p.MinAge < 0 {
		return invalid("--min-age %s is negative", p.MinAge)
	}
	if err := checkText("actor", p.Actor); err != nil {
		return err
	}
	return checkText("reason", p.Reason)
}

func (c *Catalog) appendPolicy(ctx context.Context, p Policy) (*Policy, error) {
	p.Time = c.Now().UTC()
	err := c.store.Update(ctx, func(tx Tx) error {
		// A policy may come before the image's first version (a pipeline
		// sets its rules up first): LockImage creates the image.
		if err := tx.LockImage(p.Image); err != nil {
			return err
		}
		if p.Cleared {
			cur, err := policyTx(tx, p.Image, p.Channel)
			if err != nil {
				return err
			}
			if cur == nil {
				return notFound("channel %s of %s has no policy to clear", p.Channel, p.Image)
			}
		}
		return tx.AppendPolicy(&p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// PolicyOf is the policy in force on channel, nil when there is none.
func (c *Catalog) PolicyOf(ctx context.Context, image, channel string) (*Policy, error) {
	var out *Policy
	err := c.store.View(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		var err error
		out, err = policyTx(tx, image, channel)
		return err
	})
	return out, err
}

// Policies are the policies in force on the image's channels, by channel.
func (c *Catalog) Policies(ctx context.Context, image string) ([]Policy, error) {
	out := []Policy{}
	err := c.store.View(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		h, err := tx.PolicyHistory(image, "")
		if err != nil {
			return err
		}
		last := map[string]Policy{}
		for _, p := range h {
			last[p.Channel] = p
		}
		for _, ch := range slices.Sorted(maps.Keys(last)) {
			if p := last[ch]; !p.Cleared {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// PolicyHistory lists every set and clear of channel's policy, oldest first.
func (c *Catalog) PolicyHistory(ctx context.Context, image, channel string) ([]Policy, error) {
	var out []Policy
	err := c.store.View(ctx, func(tx Tx) error {
		if err := requireImage(tx, image); err != nil {
			return err
		}
		var err error
		out, err = tx.PolicyHistory(image, channel)
		return err
	})
	return out, err
}

func policyTx(tx Tx, image, channel string) (*Policy, error) {
	h, err := tx.PolicyHistory(image, channel)
	if err != nil || len(h) == 0 {
		return nil, err
	}
	p := h[len(h)-1]
	if p.Cleared {
		return nil, nil
	}
	return &p, nil
}

// missingEvidence lists the kinds p requires that ev has no passing
// record of, or has a failed record of.
func missingEvidence(p *Policy, ev []Evidence) []string {
	passed, failed := evidenceState(ev)
	var out []string
	for _, k := range p.Require {
		switch {
		case failed[k]:
			out = append(out, fmt.Sprintf("%s evidence failed", k))
		case !passed[k]:
			out = append(out, fmt.Sprintf("no passing %s evidence", k))
		}
	}
	return out
}

// policyMissing is what v lacks for channel's policy right now: evidence,
// the source channel, the age. Empty when it may be promoted.
func (c *Catalog) policyMissing(tx Tx, p *Policy, v *Version) ([]string, error) {
	ev, err := tx.Evidence(v.Image, v.Version)
	if err != nil {
		return nil, err
	}
	missing := missingEvidence(p, ev)
	since := v.Created
	if p.From != "" {
		h, err := tx.History(v.Image, p.From)
		if err != nil {
			return nil, err
		}
		if len(h) == 0 || h[len(h)-1].Version != v.Version {
			held := "nothing"
			if len(h) > 0 {
				held = v.Image + "@" + h[len(h)-1].Version
			}
			missing = append(missing, fmt.Sprintf("not held by %s (it holds %s)", p.From, held))
			return missing, nil
		}
		// Since the channel last moved to it: a version that left and came
		// back starts again.
		since = h[len(h)-1].Time
	}
	if age := c.Now().Sub(since); p.MinAge > 0 && age < time.Duration(p.MinAge) {
		on := "registered"
		if p.From != "" {
			on = "on " + p.From
		}
		missing = append(missing, fmt.Sprintf("%s for %s, less than the %s required", on, age.Round(time.Second), p.MinAge))
	}
	return missing, nil
}

// MissingEvidence lists the evidence channel's policy requires now that
// image@version lacks (a rollback target, say); nil when none is missing
// or there is no policy.
func (c *Catalog) MissingEvidence(ctx context.Context, image, channel, version string) ([]string, error) {
	var out []string
	err := c.store.View(ctx, func(tx Tx) error {
		p, err := policyTx(tx, image, channel)
		if err != nil || p == nil {
			return err
		}
		ev, err := tx.Evidence(image, version)
		if err != nil {
			return err
		}
		out = missingEvidence(p, ev)
		return nil
	})
	return out, err
}
