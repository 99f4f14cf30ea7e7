// One journey on a canvas (@xyflow/react): its activities as nodes in columns from the start, the ways between them
// as edges, each activity's counters from GetJourneyExecutionActivityMetrics on its node. A DRAFT is built here
// (add activities, drag from one to the next to connect them, choose the start, remove) and saved with UpdateJourney;
// activating, pausing, resuming and cancelling go through the API, whose refusals are shown as they are.
import "@xyflow/react/dist/style.css";
import { Alert, Badge, Button, Group, NumberInput, Paper, Select, Stack, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Background, Controls, Position, ReactFlow, type Connection, type Edge, type Node } from "@xyflow/react";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call, type Schemas } from "../api/client";
import { Empty, Failure, QueryState } from "../components/States";
import { formatNumber } from "../i18n";
import { useCan } from "../session";
import { ADDABLE, connect, newActivity, remove, writeRequest, type Addable, type NewActivity } from "./journeyEdit";
import { journeyGraph } from "./journeyGraph";

const COLUMN_WIDTH = 260;
const ROW_HEIGHT = 150;
const NAMED_EXITS = new Set(["yes", "no", "else"]);
const RUNNING = new Set(["ACTIVE", "PAUSED", "CLOSED"]);

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

type Activity = Schemas["Activity"];
type Journey = Schemas["JourneyResponse"];
type Metrics = Record<string, Record<string, string> | undefined>;

const EMPTY_ACTIVITY: NewActivity = { kind: "EMAIL", description: "", templateName: "", waitFor: "PT1H", percentage: 10 };

/** The form that adds an activity to the draft. */
function AddActivity({ onAdd, taken }: { onAdd: (id: string, activity: Activity) => void; taken: (id: string) => boolean }) {
  const { t } = useTranslation();
  const [id, setId] = useState("");
  const [draft, setDraft] = useState<NewActivity>(EMPTY_ACTIVITY);
  const set = (patch: Partial<NewActivity>) => setDraft({ ...draft, ...patch });
  const valid = /^[A-Za-z0-9]+$/.test(id) && !taken(id);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onAdd(id, newActivity(draft));
    setId("");
    setDraft(EMPTY_ACTIVITY);
  };
  return (
    <Group component="form" onSubmit={submit} align="end" data-testid="add-activity">
      <TextInput label={t("journeys.edit.id")} description={t("journeys.edit.idHint")} value={id} onChange={(e) => setId(e.currentTarget.value)} w={150} />
      <Select
        label={t("journeys.edit.kind")}
        data={ADDABLE.map((kind) => ({ value: kind, label: t(`journeys.kinds.${kind}`) }))}
        value={draft.kind}
        onChange={(value) => value && set({ kind: value as Addable })}
        allowDeselect={false}
        w={170}
      />
      <TextInput label={t("journeys.edit.description")} value={draft.description} onChange={(e) => set({ description: e.currentTarget.value })} w={180} />
      {draft.kind === "Wait" ? (
        <TextInput label={t("journeys.edit.waitFor")} value={draft.waitFor} onChange={(e) => set({ waitFor: e.currentTarget.value })} w={120} />
      ) : draft.kind === "Holdout" ? (
        <NumberInput label={t("journeys.edit.percentage")} min={0} max={100} value={draft.percentage} onChange={(value) => set({ percentage: Number(value) || 0 })} w={120} />
      ) : (
        <TextInput label={t("journeys.edit.template")} value={draft.templateName} onChange={(e) => set({ templateName: e.currentTarget.value })} w={180} />
      )}
      <Button type="submit" disabled={!valid}>
        {t("journeys.edit.add")}
      </Button>
    </Group>
  );
}

/** Activate, pause, resume and cancel, as the journey's state allows; a refusal shows the server's message. */
function Lifecycle({ appId, journey, save }: { appId: string; journey: Journey; save: (state?: "ACTIVE") => Promise<unknown> }) {
  const { t } = useTranslation();
  const can = useCan();
  const queryClient = useQueryClient();
  const move = useMutation({
    mutationFn: (state: "ACTIVATE" | "PAUSED" | "ACTIVE" | "CANCELLED") =>
      state === "ACTIVATE"
        ? save("ACTIVE")
        : call(
            api.PUT("/v1/apps/{application-id}/journeys/{journey-id}/state", {
              params: { path: { "application-id": appId, "journey-id": journey.Id } },
              body: { State: state },
            }),
          ),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["journey", appId, journey.Id] }),
  });
  const state = journey.State ?? "DRAFT";
  const button = (label: string, target: "ACTIVATE" | "PAUSED" | "ACTIVE" | "CANCELLED", color?: string) => (
    <Button key={target} variant={color ? "light" : "filled"} color={color} loading={move.isPending && move.variables === target} onClick={() => move.mutate(target)}>
      {t(label)}
    </Button>
  );
  return (
    <Stack gap="xs">
      <Group>
        {state === "DRAFT" && can("UpdateJourney") && button("journeys.edit.activate", "ACTIVATE")}
        {state === "ACTIVE" && can("UpdateJourneyState") && button("journeys.edit.pause", "PAUSED", "yellow")}
        {state === "PAUSED" && can("UpdateJourneyState") && button("journeys.edit.resume", "ACTIVE")}
        {["ACTIVE", "PAUSED", "CLOSED"].includes(state) && can("UpdateJourneyState") && button("journeys.edit.cancel", "CANCELLED", "red")}
      </Group>
      {move.error && <Failure error={move.error} />}
    </Stack>
  );
}

function Canvas({ appId, journey, metrics }: { appId: string; journey: Journey; metrics: Metrics }) {
  const { t } = useTranslation();
  const can = useCan();
  const queryClient = useQueryClient();
  const editable = (journey.State ?? "DRAFT") === "DRAFT" && can("UpdateJourney");
  const [activities, setActivities] = useState<Record<string, Activity>>(journey.Activities ?? {});
  const [start, setStart] = useState<string | null>(journey.StartActivity ?? null);
  const [selected, setSelected] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (state?: "ACTIVE") =>
      call(
        api.PUT("/v1/apps/{application-id}/journeys/{journey-id}", {
          params: { path: { "application-id": appId, "journey-id": journey.Id } },
          body: writeRequest(journey, activities, start, state),
        }),
      ),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["journey", appId, journey.Id] }),
  });
  const graph = journeyGraph(activities, start);
  const nodes: Node[] = graph.nodes.map((node) => ({
    id: node.id,
    position: { x: node.column * COLUMN_WIDTH, y: node.row * ROW_HEIGHT },
    sourcePosition: Position.Right,
    targetPosition: Position.Left,
    draggable: false,
    connectable: editable,
    selected: node.id === selected,
    style: { width: 210, padding: 8, ...(node.id === start ? { borderWidth: 2 } : {}) },
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
        <Badge variant="light" data-testid="journey-state">
          {t(`journeys.states.${journey.State ?? "DRAFT"}`, { defaultValue: journey.State ?? "" })}
        </Badge>
      </Group>
      <Lifecycle appId={appId} journey={journey} save={(state) => save.mutateAsync(state)} />
      {editable && (
        <Paper withBorder p="sm">
          <Stack gap="xs">
            <AddActivity
              taken={(id) => id in activities}
              onAdd={(id, activity) => {
                setActivities({ ...activities, [id]: activity });
                if (!start) setStart(id);
              }}
            />
            <Group>
              <Text size="sm" c="dimmed">
                {selected ? t("journeys.edit.selected", { id: selected }) : t("journeys.edit.connectHint")}
              </Text>
              {selected && (
                <>
                  <Button size="xs" variant="light" onClick={() => setStart(selected)} disabled={selected === start}>
                    {t("journeys.edit.makeStart")}
                  </Button>
                  <Button
                    size="xs"
                    variant="light"
                    color="red"
                    onClick={() => {
                      setActivities(remove(activities, selected));
                      if (start === selected) setStart(null);
                      setSelected(null);
                    }}
                  >
                    {t("journeys.edit.remove")}
                  </Button>
                </>
              )}
              <Button size="xs" onClick={() => save.mutate(undefined)} loading={save.isPending && save.variables === undefined}>
                {t("journeys.edit.save")}
              </Button>
            </Group>
            {save.error && <Failure error={save.error} />}
            {save.isSuccess && <Alert color="green">{t("templates.saved")}</Alert>}
          </Stack>
        </Paper>
      )}
      <Paper withBorder h={560} data-testid="journey-canvas">
        {Object.keys(activities).length === 0 ? (
          <Empty>{t("journeys.noActivities")}</Empty>
        ) : (
          <ReactFlow
            nodes={nodes}
            edges={edges}
            fitView
            nodesDraggable={false}
            nodesConnectable={editable}
            onConnect={(connection: Connection) => setActivities(connect(activities, connection.source, connection.target))}
            onNodeClick={(_event, node) => setSelected(node.id === selected ? null : node.id)}
            proOptions={{ hideAttribution: true }}
          >
            <Background />
            <Controls showInteractive={false} />
          </ReactFlow>
        )}
      </Paper>
    </Stack>
  );
}

export default function JourneyCanvas() {
  const { appId = "", journeyId = "" } = useParams();
  const read = useQuery({
    queryKey: ["journey", appId, journeyId],
    queryFn: () => readJourney(appId, journeyId),
    // While people move through it, its counters are read again every few seconds.
    refetchInterval: (query) => (RUNNING.has(query.state.data?.journey.State ?? "") ? 3000 : false),
  });
  return (
    <QueryState query={read} isEmpty={() => false} empty={null}>
      {({ journey, metrics }) => <Canvas key={journey.LastModifiedDate ?? ""} appId={appId} journey={journey} metrics={metrics} />}
    </QueryState>
  );
}
