// One journey on a canvas (@xyflow/react): its activities as boxes, the ways between them as arrows, each activity's
// counters from GetJourneyExecutionActivityMetrics on its box. A DRAFT is built here: add activities of every kind,
// connect a way out by dragging from its handle (or choosing it in the activity's form), configure each activity and
// the journey's settings, move boxes where they read best (kept with the journey as ClarionCanvas), and save with
// UpdateJourney. Activating, pausing, resuming and cancelling go through the API, whose refusals are shown as they
// are, on the field they name.
import "@xyflow/react/dist/style.css";
import { Badge, Box, Button, Flex, Group, Paper, Select, Stack, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Background, Controls, ReactFlow, useReactFlow, type Connection, type Edge, type Node, type NodeChange } from "@xyflow/react";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { useSegmentOptions, useTemplates } from "../api/choices";
import { api, call, type Schemas } from "../api/client";
import { Empty, Failure, QueryState } from "../components/States";
import { formatNumber } from "../i18n";
import { ActivityForm, MESSAGE_KINDS, type ActivityContext } from "../journeys/ActivityForm";
import { nodeTypes, type ActivityNodeData } from "../journeys/ActivityNode";
import { connect, newActivity, remove, writeRequest, type Positions } from "../journeys/edit";
import { errorActivity, settingsField } from "../journeys/errors";
import { KINDS, activityKind, journeyGraph, slots, type Activity, type Kind } from "../journeys/graph";
import { SettingsForm } from "../journeys/SettingsForm";
import { settingsDraft, settingsMembers } from "../journeys/settings";
import { useCan } from "../session";

const COLUMN_WIDTH = 260;
const ROW_HEIGHT = 150;
const NAMED_EXITS = new Set(["yes", "no", "else"]);
const RUNNING = new Set(["ACTIVE", "PAUSED", "CLOSED"]);
const ADJUSTABLE = new Set(["DRAFT", ...RUNNING]);

type Journey = Schemas["ExtendedJourneyResponse"];
type Metrics = Record<string, Record<string, string> | undefined>;

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

const FIT = { maxZoom: 1, padding: 0.15 };

/** Fits the view to the activities whenever the drawing's shape changes (an activity added, removed or connected
 *  elsewhere), so no box is left off the canvas; moving a box by hand does not. */
function FitOnChange({ shape }: { shape: string }) {
  const { fitView } = useReactFlow();
  useEffect(() => {
    void fitView(FIT);
  }, [shape, fitView]);
  return null;
}

/** The form that adds an activity of any kind to the draft; it is then configured in its own form. */
function AddActivity({ onAdd, taken }: { onAdd: (id: string, activity: Activity) => void; taken: (id: string) => boolean }) {
  const { t } = useTranslation();
  const [id, setId] = useState("");
  const [kind, setKind] = useState<Kind>("EMAIL");
  const [description, setDescription] = useState("");
  const valid = /^[A-Za-z0-9]+$/.test(id) && !taken(id);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onAdd(id, newActivity(kind, description));
    setId("");
    setDescription("");
  };
  return (
    <Group component="form" onSubmit={submit} align="end" data-testid="add-activity">
      <TextInput label={t("journeys.edit.id")} description={t("journeys.edit.idHint")} value={id} onChange={(e) => setId(e.currentTarget.value)} w={150} />
      <Select
        label={t("journeys.edit.kind")}
        data={KINDS.map((value) => ({ value, label: t(`journeys.kinds.${value}`) }))}
        value={kind}
        onChange={(value) => value && setKind(value as Kind)}
        allowDeselect={false}
        searchable
        w={200}
      />
      <TextInput label={t("journeys.edit.description")} value={description} onChange={(e) => setDescription(e.currentTarget.value)} w={180} />
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
      {/* A refused activation is the save's refusal, shown on its field. */}
      {move.error && move.variables !== "ACTIVATE" && <Failure error={move.error} />}
    </Stack>
  );
}

function Canvas({ appId, journey, metrics }: { appId: string; journey: Journey; metrics: Metrics }) {
  const { t } = useTranslation();
  const can = useCan();
  const queryClient = useQueryClient();
  const segments = useSegmentOptions(appId);
  const allTemplates = useTemplates();
  const templates: Record<string, string[]> = {};
  for (const template of allTemplates) (templates[template.TemplateType] ??= []).push(template.TemplateName);
  const state = journey.State ?? "DRAFT";
  // A DRAFT is built; past DRAFT its activities are fixed, but its settings and layout may still change until it ends.
  const editable = state === "DRAFT" && can("UpdateJourney");
  const adjustable = ADJUSTABLE.has(state) && can("UpdateJourney");
  const [activities, setActivities] = useState<Record<string, Activity>>(journey.Activities ?? {});
  const [start, setStart] = useState<string | null>(journey.StartActivity ?? null);
  const [settings, setSettings] = useState(() => settingsDraft(journey));
  const [positions, setPositions] = useState<Positions>(journey.ClarionCanvas?.Positions ?? {});
  const [selected, setSelected] = useState<string | null>(null);
  const [tab, setTab] = useState<string | null>("activity");
  const ids = Object.keys(activities);
  const save = useMutation({
    mutationFn: (state?: "ACTIVE") =>
      call(
        api.PUT("/v1/apps/{application-id}/journeys/{journey-id}", {
          params: { path: { "application-id": appId, "journey-id": journey.Id } },
          body: writeRequest(journey, { activities, start, settings: settingsMembers(settings), positions }, state),
        }),
      ),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["journey", appId, journey.Id] }),
    onError: (error) => {
      // The refusal is shown on the field it names: open the form that holds that field.
      const activity = errorActivity(error.message, ids);
      if (activity) {
        setSelected(activity);
        setTab("activity");
      } else if (settingsField(error.message)) {
        setTab("settings");
      }
    },
  });
  const refusal = save.error?.message;
  const refusedActivity = refusal ? errorActivity(refusal, ids) : undefined;
  const graph = journeyGraph(activities, start);
  const nodes: Node<ActivityNodeData>[] = graph.nodes.map((node) => {
    const kept = positions[node.id];
    return {
      id: node.id,
      type: "activity",
      position: kept ? { x: kept.X, y: kept.Y } : { x: node.column * COLUMN_WIDTH, y: node.row * ROW_HEIGHT },
      draggable: adjustable,
      selected: node.id === selected,
      style: {
        width: 210,
        padding: 8,
        background: "var(--mantine-color-body)",
        borderRadius: 4,
        border: `${node.id === start ? 2 : 1}px solid var(--mantine-color-${node.id === refusedActivity ? "red-6" : node.id === selected ? "blue-6" : "gray-5"})`,
      },
      data: {
        connectable: editable,
        exits: slots(activities[node.id]).map(({ slot, label, target }) => ({
          slot,
          label: label && NAMED_EXITS.has(label) ? t(`journeys.exits.${label}`) : label,
          connected: Boolean(target && activities[target]),
        })),
        content: (
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
    };
  });
  const edges: Edge[] = graph.edges.map((edge) => ({
    id: `${edge.source}-${edge.slot}`,
    source: edge.source,
    sourceHandle: edge.slot,
    target: edge.target,
    label: edge.label && NAMED_EXITS.has(edge.label) ? t(`journeys.exits.${edge.label}`) : edge.label,
  }));
  const moved = (changes: NodeChange[]) => {
    const next = { ...positions };
    for (const change of changes) {
      if (change.type === "position" && change.position) next[change.id] = { X: Math.round(change.position.x), Y: Math.round(change.position.y) };
    }
    if (changes.some((change) => change.type === "position" && change.position)) setPositions(next);
  };
  const context: ActivityContext = {
    others: ids.filter((id) => id !== selected),
    messageActivities: ids.filter((id) => MESSAGE_KINDS.includes(activityKind(activities[id]))),
    segments,
    templates,
    error: refusal,
  };
  const placed = refusal && (refusedActivity || settingsField(refusal));
  const canvas = (
    <Paper withBorder h={620} data-testid="journey-canvas" style={{ flex: 1, minWidth: 0 }}>
      {ids.length === 0 ? (
        <Empty>{t("journeys.noActivities")}</Empty>
      ) : (
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          fitView
          fitViewOptions={FIT}
          nodesDraggable={adjustable}
          nodesConnectable={editable}
          onNodesChange={adjustable ? moved : undefined}
          onConnect={(connection: Connection) => setActivities(connect(activities, connection.source, connection.target, connection.sourceHandle ?? "next"))}
          onNodeClick={(_event, node) => {
            setSelected(node.id === selected ? null : node.id);
            setTab("activity");
          }}
          proOptions={{ hideAttribution: true }}
        >
          <FitOnChange shape={graph.nodes.map((node) => `${node.id}:${node.column}:${node.row}`).join(" ")} />
          <Background />
          <Controls showInteractive={false} />
        </ReactFlow>
      )}
    </Paper>
  );
  return (
    <Stack>
      <Group>
        <Title order={2}>{journey.Name}</Title>
        <Badge variant="light" data-testid="journey-state">
          {t(`journeys.states.${journey.State ?? "DRAFT"}`, { defaultValue: journey.State ?? "" })}
        </Badge>
      </Group>
      <Lifecycle appId={appId} journey={journey} save={(state) => save.mutateAsync(state)} />
      {adjustable && (
        <Paper withBorder p="sm">
          <Stack gap="xs">
            {editable && (
              <AddActivity
                taken={(id) => id in activities}
                onAdd={(id, activity) => {
                  setActivities({ ...activities, [id]: activity });
                  if (!start) setStart(id);
                  setSelected(id);
                  setTab("activity");
                }}
              />
            )}
            <Group>
              <Text size="sm" c="dimmed">
                {t(editable ? "journeys.edit.connectHint" : "journeys.edit.adjustHint")}
              </Text>
              <Button size="xs" onClick={() => save.mutate(undefined)} loading={save.isPending && save.variables === undefined}>
                {t(editable ? "journeys.edit.save" : "journeys.edit.saveChanges")}
              </Button>
              {save.isSuccess && (
                <Text size="sm" c="green">
                  {t("templates.saved")}
                </Text>
              )}
            </Group>
            {refusal && !placed && <Failure error={save.error} />}
          </Stack>
        </Paper>
      )}
      <Flex gap="md" align="start">
        {canvas}
        <Box w={380}>
          <Tabs value={tab} onChange={setTab}>
            <Tabs.List>
              <Tabs.Tab value="activity">{t("journeys.form.activityTab")}</Tabs.Tab>
              <Tabs.Tab value="settings">{t("journeys.settings.title")}</Tabs.Tab>
            </Tabs.List>
            <Tabs.Panel value="activity" pt="sm">
              <Stack gap="xs">
                <Select label={t("journeys.form.choose")} data={ids} value={selected} onChange={setSelected} searchable />
                {selected && activities[selected] && (
                  <>
                    <Group gap="xs">
                      <Badge variant="outline">{t(`journeys.kinds.${activityKind(activities[selected]) || "none"}`)}</Badge>
                      {selected === start && <Badge variant="light">{t("journeys.form.isStart")}</Badge>}
                    </Group>
                    <fieldset disabled={!editable} style={{ border: 0, padding: 0, margin: 0 }}>
                      <Stack gap="xs">
                        <TextInput
                          label={t("journeys.edit.description")}
                          value={activities[selected].Description ?? ""}
                          onChange={(e) => setActivities({ ...activities, [selected]: { ...activities[selected], Description: e.currentTarget.value || undefined } })}
                        />
                        <ActivityForm
                          key={selected}
                          id={selected}
                          activity={activities[selected]}
                          onChange={(activity) => setActivities({ ...activities, [selected]: activity })}
                          context={context}
                        />
                      </Stack>
                    </fieldset>
                    {editable && (
                      <Group>
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
                      </Group>
                    )}
                  </>
                )}
              </Stack>
            </Tabs.Panel>
            <Tabs.Panel value="settings" pt="sm">
              <SettingsForm draft={settings} onChange={setSettings} error={refusal} readOnly={!adjustable} entryFixed={!editable} segments={segments} />
            </Tabs.Panel>
          </Tabs>
        </Box>
      </Flex>
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
      {/* The edits start again from the journey when its state changes, not when a save of them comes back. */}
      {({ journey, metrics }) => <Canvas key={journey.State ?? ""} appId={appId} journey={journey} metrics={metrics} />}
    </QueryState>
  );
}
