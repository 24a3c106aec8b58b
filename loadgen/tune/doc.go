// Package tune drives an edge's admin API to compare its balancing
// policies under a campaign: for each policy it PUTs /admin/balancer, runs
// the campaign, reads /admin/upstreams and each host's share of the
// requests (the edge's per-upstream counters on /metrics), and finally
// recommends the policy whose worst case across scenarios (for instance one
// with a slow origin) is best, with the figures that justify it.
//
// A campaign comes from one address, so hashing on the client IP would see
// one client: the hash policy is tried on a per-shopper header the tuner
// varies (HashPerClient), and a policy that put more than its fair share
// plus a margin on one host is never recommended.
//
// It must never leave the edge on a policy it chose for a trial: Run puts
// back the policy found at the start.
package tune
