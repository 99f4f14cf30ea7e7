// One journey drawn read-only with @xyflow/react: its activities as nodes in columns from the start, the ways
// between them as edges, and each activity's counters from GetJourneyExecutionActivityMetrics on its node.
import "@xyflow/react/dist/style.css";
import { Badge, Group, Paper, Stack, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { Background, Controls, Position, ReactFlow, type Edge, type Node } from "@xyflow/react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { QueryState } from "../components/States";
import { formatNumber } from "../i18n";
import { journeyGraph } from "./journeyGraph";

const COLUMN_WIDTH = 260;
const ROW_HEIGHT = 150;
const NAMED_EXITS = new Set(["yes", "no", "else"]);

async function readJourney(appId: string, journeyId: string) {
  const journey = await call(
    api.GET("/v1/apps/{application-id}/journeys/{journey-id}", {
      params: { path: { "application-id": appId, "journey-id": journeyId } },
    }),
  );
  const activities = journey.Activities ?? {};
  const metrics = await Promise.all(
    Object.keys(activities).map((activityId) =>
      call(
        api.GET("/v1/apps/{application-id}/journeys/{journey-id}/activities/{journey-activity-id}/execution-metrics", {
          params: { path: { "application-id": appId, "journey-id": journeyId, "journey-activity-id": activityId }, query: {} },
        }),
      ),
    ),
  );
  return { journey, metrics: Object.fromEntries(metrics.map((answer) => [answer.JourneyActivityId, answer.Metrics])) };
}

export default function JourneyCanvas() {
  const { t } = useTranslation();
  const { appId = "", journeyId = "" } = useParams();
  const read = useQuery({ queryKey: ["journey", appId, journeyId], queryFn: () => readJourney(appId, journeyId) });
  return (
    <QueryState query={read} isEmpty={(data) => !Object.keys(data.journey.Activities ?? {}).length} empty={t("journeys.noActivities")}>
      {({ journey, metrics }) => {
        const activities = journey.Activities ?? {};
        const graph = journeyGraph(activities, journey.StartActivity);
        const nodes: Node[] = graph.nodes.map((node) => ({
          id: node.id,
          position: { x: node.column * COLUMN_WIDTH, y: node.row * ROW_HEIGHT },
          sourcePosition: Position.Right,
          targetPosition: Position.Left,
          draggable: false,
          connectable: false,
          style: { width: 210, padding: 8 },
          data: {
            label: (
              <Stack gap={2} data-testid={`activity-${node.id}`}>
                <Text fw={600} size="sm">
                  {t(`journeys.kinds.${node.kind || "none"}`)}
                </Text>
                <Text size="xs" c="dimmed" truncate>
                  {activities[node.id].Description || node.id}
                </Text>
                {Object.entries(metrics[node.id] ?? {}).map(([name, value]) => (
                  <Text size="xs" key={name} data-testid={`metric-${node.id}-${name}`}>
                    {t(`journeys.metrics.${name}`, { defaultValue: name })}: {formatNumber(Number(value))}
                  </Text>
                ))}
              </Stack>
            ),
          },
        }));
        const edges: Edge[] = graph.edges.map((edge, index) => ({
          id: `${edge.source}-${edge.target}-${index}`,
          source: edge.source,
          target: edge.target,
          label: edge.label && NAMED_EXITS.has(edge.label) ? t(`journeys.exits.${edge.label}`) : edge.label,
        }));
        return (
          <Stack>
            <Group>
              <Title order={2}>{journey.Name}</Title>
              <Badge variant="light">{t(`journeys.states.${journey.State ?? "DRAFT"}`, { defaultValue: journey.State ?? "" })}</Badge>
            </Group>
            <Paper withBorder h={560} data-testid="journey-canvas">
              <ReactFlow nodes={nodes} edges={edges} fitView nodesDraggable={false} nodesConnectable={false} proOptions={{ hideAttribution: true }}>
                <Background />
                <Controls showInteractive={false} />
              </ReactFlow>
            </Paper>
          </Stack>
        );
      }}
    </QueryState>
  );
}
