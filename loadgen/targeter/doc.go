// Package targeter turns a campaign into a vegeta.Targeter: it draws the
// next request of the weighted mix, fills its ${placeholders} from feeders
// and journey variables, and walks journeys step by step.
//
// A journey's next step is handed out only after Observe has seen the
// answer to its previous step, so a login token or a cart is in place
// before the step that needs it; a failed step ends its journey. Each
// target URL carries a fragment naming its request ("#home",
// "#checkout/login~42"); fragments are never sent on the wire, and they let
// results be attributed to requests and journeys afterwards.
//
// It must never send a request itself or block a vegeta worker.
package targeter
