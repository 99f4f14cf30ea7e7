// A journey's activities as a graph to draw: each activity is a node, each way out of it (NextActivity, a branch, the
// true/false paths, the default) an edge, and nodes are laid out in columns by their distance from the start.
import type { Schemas } from "../api/client";

type Activity = Schemas["Activity"];

const KINDS = ["EMAIL", "SMS", "PUSH", "CUSTOM", "Wait", "Holdout", "RandomSplit", "ConditionalSplit", "MultiCondition", "ContactCenter"] as const;

export interface GraphNode {
  id: string;
  kind: string;
  column: number;
  row: number;
}

export interface GraphEdge {
  source: string;
  target: string;
  /** What the way out is called when there are several: a branch's percentage, yes/no, or else. */
  label?: string;
}

/** The activity's type key (EMAIL, Wait, RandomSplit, ...), or "" for an activity with none. */
export function activityKind(activity: Activity): string {
  return KINDS.find((kind) => activity[kind]) ?? "";
}

/** The ways out of one activity, in the order the journey lists them. */
export function exits(activity: Activity): { target: string; label?: string }[] {
  const found: { target: string | null | undefined; label?: string }[] = [];
  for (const kind of ["EMAIL", "SMS", "PUSH", "CUSTOM", "Wait", "Holdout", "ContactCenter"] as const) {
    found.push({ target: activity[kind]?.NextActivity });
  }
  for (const branch of activity.RandomSplit?.Branches ?? []) {
    found.push({ target: branch.NextActivity, label: `${branch.Percentage ?? 0}%` });
  }
  found.push({ target: activity.ConditionalSplit?.TrueActivity, label: "yes" });
  found.push({ target: activity.ConditionalSplit?.FalseActivity, label: "no" });
  (activity.MultiCondition?.Branches ?? []).forEach((branch, index) => found.push({ target: branch.NextActivity, label: `${index + 1}` }));
  found.push({ target: activity.MultiCondition?.DefaultActivity, label: "else" });
  return found.filter((exit): exit is { target: string; label?: string } => Boolean(exit.target));
}

/** Nodes in columns by their shortest distance from `start` (activities it never reaches go in a last column),
 *  and the edges between them. */
export function journeyGraph(activities: Record<string, Activity>, start: string | null | undefined): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const column = new Map<string, number>();
  const queue = start && activities[start] ? [start] : [];
  if (queue.length) column.set(queue[0], 0);
  while (queue.length) {
    const id = queue.shift()!;
    for (const { target } of exits(activities[id])) {
      if (activities[target] && !column.has(target)) {
        column.set(target, column.get(id)! + 1);
        queue.push(target);
      }
    }
  }
  const unreached = Math.max(-1, ...column.values()) + 1;
  const rows = new Map<number, number>();
  const nodes = Object.keys(activities).map((id) => {
    const at = column.get(id) ?? unreached;
    const row = rows.get(at) ?? 0;
    rows.set(at, row + 1);
    return { id, kind: activityKind(activities[id]), column: at, row };
  });
  const edges = Object.entries(activities).flatMap(([id, activity]) =>
    exits(activity)
      .filter(({ target }) => activities[target])
      .map(({ target, label }) => ({ source: id, target, label })),
  );
  return { nodes, edges };
}
