import { Alert, Button, Grid, Group, NavLink, Paper, Select, Stack, Text, Textarea, TextInput, Title } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useParams } from "react-router";
import { api, call } from "../api/client";
import { LoadMore, usePaged } from "../components/Paged";
import { Failure, QueryState } from "../components/States";
import { FIELDS, formFields, loadTemplate, requestBody, saveTemplate, TYPES, type Fields, type TemplateType } from "../templates/api";
import { useCan } from "../session";

interface Editing {
  type: TemplateType;
  name: string;
  exists: boolean;
}

/** The draft rendered by the server's own Handlebars, for an endpoint or for no one, as the fields change. */
function Preview({ appId, type, fields }: { appId: string; type: TemplateType; fields: Fields }) {
  const { t } = useTranslation();
  const [endpointId, setEndpointId] = useState("");
  const [draft] = useDebouncedValue({ fields, endpointId }, 400);
  const preview = useQuery({
    queryKey: ["template-preview", appId, type, draft],
    placeholderData: keepPreviousData,
    queryFn: () =>
      call(
        api.POST("/v1/apps/{application-id}/clarion/template-preview", {
          params: { path: { "application-id": appId } },
          body: {
            TemplateType: type,
            // The draft is one of the four template request shapes; the schema types it as a free-form object.
            Template: requestBody(type, draft.fields) as never,
            EndpointId: draft.endpointId || undefined,
          },
        }),
      ),
  });
  return (
    <Paper withBorder p="md" data-testid="template-preview">
      <Stack>
        <Title order={4}>{t("templates.preview")}</Title>
        <TextInput
          label={t("templates.previewFor")}
          placeholder={t("templates.anyone")}
          value={endpointId}
          onChange={(e) => setEndpointId(e.currentTarget.value)}
        />
        {preview.error ? (
          <Failure error={preview.error} />
        ) : preview.data?.Problem ? (
          <Alert color="yellow" data-testid="preview-problem">
            <span lang="en">{preview.data.Problem}</span>
          </Alert>
        ) : preview.data ? (
          <Stack gap="xs">
            {preview.data.Subject && <Text fw={600}>{preview.data.Subject}</Text>}
            {preview.data.Title && <Text fw={600}>{preview.data.Title}</Text>}
            {preview.data.HtmlPart && (
              <iframe title={t("templates.preview")} sandbox="" srcDoc={preview.data.HtmlPart} style={{ width: "100%", minHeight: 240, border: 0 }} />
            )}
            {preview.data.TextPart && <Text style={{ whiteSpace: "pre-wrap" }}>{preview.data.TextPart}</Text>}
            {preview.data.Body && (
              <Text style={{ whiteSpace: "pre-wrap" }} data-testid="preview-body">
                {preview.data.Body}
              </Text>
            )}
          </Stack>
        ) : (
          <Text c="dimmed">{t("segments.estimating")}</Text>
        )}
      </Stack>
    </Paper>
  );
}

/** In-app content is drawn by the app's SDK, not rendered by the server: a sketch of the message as laid out. */
function InAppPreview({ fields }: { fields: Fields }) {
  const { t } = useTranslation();
  const color = fields.TextColor || undefined;
  return (
    <Paper withBorder p="md" data-testid="template-preview">
      <Stack>
        <Title order={4}>{t("templates.preview")}</Title>
        <Text size="xs" c="dimmed">
          {t("templates.inAppSketch", { layout: t(`templates.layout.${fields.Layout || "MIDDLE_BANNER"}`) })}
        </Text>
        <Paper p="md" radius="md" shadow="sm" style={{ background: fields.BackgroundColor || undefined }} data-testid="inapp-sketch">
          <Stack align="center" gap="xs">
            {fields.ImageUrl && <Text size="xs" c="dimmed">{fields.ImageUrl}</Text>}
            {fields.Header && (
              <Text fw={700} style={{ color }}>
                {fields.Header}
              </Text>
            )}
            {fields.Body && <Text style={{ color, whiteSpace: "pre-wrap" }}>{fields.Body}</Text>}
            {fields.ButtonText && (
              <Button size="xs" component="span" title={fields.ButtonLink || undefined}>
                {fields.ButtonText}
              </Button>
            )}
          </Stack>
        </Paper>
      </Stack>
    </Paper>
  );
}

function TestSend({ appId, editing }: { appId: string; editing: Editing }) {
  const { t } = useTranslation();
  const [address, setAddress] = useState("");
  const member = { EMAIL: "EmailTemplate", SMS: "SMSTemplate", PUSH: "PushTemplate", VOICE: "VoiceTemplate", INAPP: "InAppTemplate" }[editing.type];
  const channel = { EMAIL: "EMAIL", SMS: "SMS", PUSH: "GCM", VOICE: "VOICE", INAPP: "IN_APP" }[editing.type] as "EMAIL";
  const send = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/apps/{application-id}/messages", {
          params: { path: { "application-id": appId } },
          body: {
            Addresses: { [address]: { ChannelType: channel } },
            MessageConfiguration: {},
            TemplateConfiguration: { [member]: { Name: editing.name } },
          },
        }),
      ),
  });
  const result = send.data?.Result?.[address];
  return (
    <Group align="end">
      <TextInput label={t("templates.testAddress")} value={address} onChange={(e) => setAddress(e.currentTarget.value)} />
      <Button variant="light" onClick={() => send.mutate()} disabled={!address || !editing.exists} loading={send.isPending}>
        {t("templates.testSend")}
      </Button>
      {send.error && <Failure error={send.error} />}
      {result && (
        <Text size="sm" data-testid="test-send-result">
          {t(`deliveryStatus.${result.DeliveryStatus}`, { defaultValue: result.DeliveryStatus })} {result.StatusMessage ?? ""}
        </Text>
      )}
    </Group>
  );
}

function Versions({ editing, onPick }: { editing: Editing; onPick: (version: string) => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const type = editing.type.toLowerCase();
  const versions = useQuery({
    queryKey: ["template-versions", editing.type, editing.name],
    enabled: editing.exists,
    queryFn: () =>
      call(
        api.GET("/v1/templates/{template-name}/{template-type}/versions", {
          params: { path: { "template-name": editing.name, "template-type": type } },
        }),
      ),
  });
  const activate = useMutation({
    mutationFn: (version: string) =>
      call(
        api.PUT("/v1/templates/{template-name}/{template-type}/active-version", {
          params: { path: { "template-name": editing.name, "template-type": type } },
          body: { Version: version },
        }),
      ),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["template-versions", editing.type, editing.name] }),
  });
  const items = versions.data?.Item ?? [];
  if (!editing.exists || !items.length) return null;
  return (
    <Group align="end">
      <Select
        label={t("templates.versions")}
        data={items.map((item) => ({ value: item.Version ?? "", label: item.Version ?? "" }))}
        onChange={(value) => value && onPick(value)}
        placeholder={t("templates.pickVersion")}
      />
      {items.map((item) => (
        <Button key={item.Version} size="xs" variant="subtle" onClick={() => item.Version && activate.mutate(item.Version)}>
          {t("templates.makeActive", { version: item.Version })}
        </Button>
      ))}
      {activate.error && <Failure error={activate.error} />}
    </Group>
  );
}

function Editor({ appId, editing, onSaved }: { appId: string; editing: Editing; onSaved: (e: Editing) => void }) {
  const { t } = useTranslation();
  const can = useCan();
  const empty = Object.fromEntries(FIELDS[editing.type].map(({ name }) => [name, ""]));
  const [fields, setFields] = useState<Fields>(empty);
  const [version, setVersion] = useState<string | undefined>();
  const stored = useQuery({
    queryKey: ["template", editing.type, editing.name, version],
    enabled: editing.exists,
    queryFn: () => loadTemplate(editing.type, editing.name, version),
  });
  useEffect(() => {
    if (stored.data) setFields(formFields(editing.type, stored.data));
  }, [stored.data, editing.type]);
  const save = useMutation({
    mutationFn: () => saveTemplate(editing.type, editing.name, fields, editing.exists),
    onSuccess: () => onSaved({ ...editing, exists: true }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate();
  };
  return (
    <Grid>
      <Grid.Col span={{ base: 12, md: 6 }}>
        <Stack component="form" onSubmit={submit}>
          <Title order={3}>
            {editing.name} · {t(`templates.type.${editing.type}`)}
          </Title>
          <Versions editing={editing} onPick={setVersion} />
          {stored.error && <Failure error={stored.error} />}
          {FIELDS[editing.type].map(({ name, multiline, options }) =>
            options ? (
              <Select
                key={name}
                label={t(`templates.field.${name}`)}
                data={options.map((value) => ({ value, label: t(`templates.layout.${value}`) }))}
                value={fields[name] || options[0]}
                onChange={(value) => value && setFields({ ...fields, [name]: value })}
                allowDeselect={false}
              />
            ) : multiline ? (
              <Textarea
                key={name}
                label={t(`templates.field.${name}`)}
                value={fields[name] ?? ""}
                onChange={(e) => setFields({ ...fields, [name]: e.currentTarget.value })}
                autosize
                minRows={4}
                styles={{ input: { fontFamily: "monospace" } }}
              />
            ) : (
              <TextInput
                key={name}
                label={t(`templates.field.${name}`)}
                value={fields[name] ?? ""}
                onChange={(e) => setFields({ ...fields, [name]: e.currentTarget.value })}
              />
            ),
          )}
          {save.error && <Failure error={save.error} />}
          {save.isSuccess && <Alert color="green">{t("templates.saved")}</Alert>}
          <Group>
            <Button type="submit" loading={save.isPending} disabled={!can(editing.exists ? "UpdateEmailTemplate" : "CreateEmailTemplate")}>
              {editing.exists ? t("templates.saveVersion") : t("templates.create")}
            </Button>
          </Group>
          {can("SendMessages") && editing.type !== "INAPP" && <TestSend appId={appId} editing={editing} />}
        </Stack>
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 6 }}>
        {editing.type === "INAPP" ? <InAppPreview fields={fields} /> : <Preview appId={appId} type={editing.type} fields={fields} />}
      </Grid.Col>
    </Grid>
  );
}

export default function Templates() {
  const { t } = useTranslation();
  const { appId = "" } = useParams();
  const can = useCan();
  const queryClient = useQueryClient();
  const [search, setSearch] = useState("");
  const [newName, setNewName] = useState("");
  const [newType, setNewType] = useState<TemplateType>("EMAIL");
  const [editing, setEditing] = useState<Editing | null>(null);
  const templates = usePaged(["templates", search], (token) =>
    call(api.GET("/v1/templates", { params: { query: { "page-size": "50", "next-token": token, prefix: search || undefined } } })),
  );
  const start = (event: FormEvent) => {
    event.preventDefault();
    setEditing({ type: newType, name: newName, exists: false });
    setNewName("");
  };
  return (
    <Stack>
      <Title order={2}>{t("templates.title")}</Title>
      <Grid>
        <Grid.Col span={{ base: 12, md: 3 }}>
          <Stack>
            {can("CreateEmailTemplate") && (
              <Stack component="form" onSubmit={start} gap="xs">
                <TextInput label={t("templates.name")} value={newName} onChange={(e) => setNewName(e.currentTarget.value)} required />
                <Select
                  label={t("templates.typeLabel")}
                  data={TYPES.map((value) => ({ value, label: t(`templates.type.${value}`) }))}
                  value={newType}
                  onChange={(value) => value && setNewType(value as TemplateType)}
                  allowDeselect={false}
                />
                <Button type="submit" variant="light">
                  {t("templates.new")}
                </Button>
              </Stack>
            )}
            <TextInput placeholder={t("common.search")} aria-label={t("common.search")} value={search} onChange={(e) => setSearch(e.currentTarget.value)} />
            <QueryState query={templates.state} isEmpty={(data) => data.length === 0} empty={t("templates.empty")}>
              {(data) => (
                <Stack gap={0} data-testid="templates">
                  {data.map((item) => (
                    <NavLink
                      key={`${item.TemplateType}:${item.TemplateName}`}
                      label={item.TemplateName}
                      description={t(`templates.type.${item.TemplateType}`, { defaultValue: item.TemplateType })}
                      active={editing?.name === item.TemplateName && editing.type === item.TemplateType}
                      onClick={() =>
                        (TYPES as readonly string[]).includes(item.TemplateType) &&
                        setEditing({ type: item.TemplateType as TemplateType, name: item.TemplateName, exists: true })
                      }
                    />
                  ))}
                </Stack>
              )}
            </QueryState>
            <LoadMore paged={templates} />
          </Stack>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 9 }}>
          {editing ? (
            <Editor
              key={`${editing.type}:${editing.name}`}
              appId={appId}
              editing={editing}
              onSaved={(saved) => {
                setEditing(saved);
                void queryClient.invalidateQueries({ queryKey: ["templates"] });
                void queryClient.invalidateQueries({ queryKey: ["template-versions", saved.type, saved.name] });
              }}
            />
          ) : (
            <Text c="dimmed">{t("templates.pick")}</Text>
          )}
        </Grid.Col>
      </Grid>
    </Stack>
  );
}
