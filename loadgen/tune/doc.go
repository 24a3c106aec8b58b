// Package tune drives an edge's admin API to compare its balancing
// policies under a campaign: for each policy it PUTs /admin/balancer, runs
// the campaign, reads /admin/upstreams, and finally recommends the policy
// whose worst case across scenarios (for instance one with a slow origin)
// is best, with the figures that justify it.
//
// It must never leave the edge on a policy it chose for a trial: Restore
// puts back the policy found at the start.
package tune
