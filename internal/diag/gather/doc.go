// Package gather runs a diagnosis: the Executor observes the channel,
// asks the trees (diag.Decide) what they need, fetches each fact (pings,
// sibling blades, the enclosure manager's view, session census, loss,
// suite and privilege trials, the store's history and the fleet's
// figures) and hands it back until they decide; DiagnoseAgent applies an
// agent's decided actions through AgentActions. Everything that does I/O
// for a diagnosis is here; package diag keeps the facts, trees and
// actions, pure as a package (internal/layers.TestPureCores).
package gather
