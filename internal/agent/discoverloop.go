package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The rediscovery loop: the managers listed by one, connections kept in step.

// discoverLoop asks for the managers every Rediscover (and when asked to,
// by refresh-trust), starting a connection to each new one and stopping
// those of discovered managers no longer listed.
func (a *agentd) discoverLoop(ctx context.Context) {
	defer a.wg.Done()
	if a.cfg.Rediscover < 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(a.cfg.Rediscover)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.discoverKick:
		}
		if _, err := a.discover(ctx); err != nil && !errors.Is(err, ErrNoManager) {
			a.cfg.Logger.Warn("agent: rediscovering managers", "err", err)
		}
	}
}

// discover asks one manager for the live managers and adjusts the
// connections; it returns the list.
func (a *agentd) discover(ctx context.Context) ([]string, error) {
	r, err := a.request(ctx, msg{Type: "discover"})
	if err != nil {
		return nil, err
	}
	if len(r.Managers) == 0 {
		return nil, errors.New("the manager listed no managers")
	}
	a.mu.Lock()
	conf := a.configured()
	var added []string
	for _, m := range r.Managers {
		if len(a.loops) >= 64 {
			break // bounded: a manager cannot make us dial the world
		}
		if _, ok := a.loops[m]; !ok {
			a.startLoopLocked(m, true)
			added = append(added, m)
		}
	}
	var removed []string
	for addr, cancel := range a.loops {
		if a.discovered[addr] && !slices.Contains(r.Managers, addr) && !slices.Contains(conf, addr) {
			cancel()
			delete(a.loops, addr)
			delete(a.views, addr)
			delete(a.discovered, addr)
			removed = append(removed, addr)
		}
	}
	a.mu.Unlock()
	if len(added)+len(removed) > 0 {
		a.audit("managers rediscovered", fmt.Sprintf("added %v, removed %v", added, removed))
	}
	return r.Managers, nil
}
