// An activity's box on the canvas: one handle in (left) and one out (right) per way out. A split's handles are named
// by their branch while they lead nowhere (once connected, the arrow carries the name), so each way out is connected
// by dragging from its own handle.
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import type { ReactNode } from "react";

export type ActivityNodeData = {
  content: ReactNode;
  /** The ways out: the handle's id (a slot of ./graph.ts) and what it is called when there are several. */
  exits: { slot: string; label?: string; connected: boolean }[];
  connectable: boolean;
};

export function ActivityNode({ data }: NodeProps<Node<ActivityNodeData>>) {
  const several = data.exits.length > 1;
  return (
    <>
      <Handle type="target" position={Position.Left} isConnectable={data.connectable} />
      {data.content}
      {data.exits.map((exit, index) => {
        const top = `${((index + 1) / (data.exits.length + 1)) * 100}%`;
        return (
          <Handle key={exit.slot} id={exit.slot} type="source" position={Position.Right} style={{ top }} isConnectable={data.connectable} title={exit.label}>
            {several && exit.label && !exit.connected && (
              <span style={{ position: "absolute", right: 10, top: -7, fontSize: 10, whiteSpace: "nowrap", pointerEvents: "none" }}>{exit.label}</span>
            )}
          </Handle>
        );
      })}
    </>
  );
}

export const nodeTypes = { activity: ActivityNode };
