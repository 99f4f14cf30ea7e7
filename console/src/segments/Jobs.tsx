// Segment imports (an uploaded file, or a file at an S3, https or server path) and exports, with each job's progress
// as the API reports it (GetImportJobs / GetExportJobs, polled while a job runs).
import { Badge, Button, FileInput, Group, Paper, Progress, SegmentedControl, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, call, type Schemas } from "../api/client";
import { LoadMore, usePaged } from "../components/Paged";
import { Failure, QueryState } from "../components/States";
import { formatDate, formatNumber } from "../i18n";
import { useCan } from "../session";
import { uploadName } from "./uploads";

// Pinpoint requires a RoleArn on every job; Clarion stores it and reads files with the operator's own access.
const CONSOLE_ROLE = "arn:aws:iam::000000000000:role/clarion-console";
const ENDED = new Set(["COMPLETED", "FAILED"]);

type Kind = "import" | "export";
type Job = Schemas["ImportJobResponse"] | Schemas["ExportJobResponse"];

function formatOf(name: string): "CSV" | "JSON" {
  return name.toLowerCase().endsWith(".csv") ? "CSV" : "JSON";
}

function Jobs({ appId, kind }: { appId: string; kind: Kind }) {
  const { t } = useTranslation();
  const jobs = usePaged(
    ["jobs", kind, appId],
    (token): Promise<{ Item: Job[]; NextToken?: string | null }> =>
      call(
        api.GET(kind === "import" ? "/v1/apps/{application-id}/jobs/import" : "/v1/apps/{application-id}/jobs/export", {
          params: { path: { "application-id": appId }, query: { "page-size": "20", token } },
        }),
      ),
    (pages) => (pages.some((page) => page.Item.some((job) => !ENDED.has(job.JobStatus))) ? 1000 : false),
  );
  return (
    <Stack>
      <QueryState
        query={jobs.state}
        isEmpty={(data) => data.length === 0}
        empty={t(`jobs.${kind}.empty`)}
      >
        {(data) => (
          <Table data-testid={`${kind}-jobs`}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("common.created")}</Table.Th>
                <Table.Th>{t(`jobs.${kind}.location`)}</Table.Th>
                <Table.Th w={140}>{t("jobs.status")}</Table.Th>
                <Table.Th w="35%">{t("jobs.progress")}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.map((job) => (
                <JobRow key={job.Id} appId={appId} job={job} kind={kind} />
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>
      <LoadMore paged={jobs} />
    </Stack>
  );
}

/** Save the file through the browser's own download: the answer's bytes as a Blob behind a temporary link. */
function save(file: Schemas["ExportFileResponse"]) {
  const bytes = Uint8Array.from(atob(file.Content), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/gzip" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = file.FileName;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** A button per file a finished export wrote (ClarionGetExportFile reads it back from the project's storage). */
function Downloads({ appId, job }: { appId: string; job: Job }) {
  const { t } = useTranslation();
  const can = useCan();
  const files = (job.TotalPieces ?? 0) - (job.FailedPieces ?? 0);
  const download = useMutation({
    mutationFn: (part: number) =>
      call(
        api.GET("/v1/apps/{application-id}/clarion/export-files", {
          params: { path: { "application-id": appId }, query: { "job-id": job.Id, part: String(part) } },
        }),
      ),
    onSuccess: save,
  });
  if (!can("ClarionGetExportFile") || files <= 0) return null;
  return (
    <Stack gap={4}>
      <Group gap={4}>
        {Array.from({ length: files }, (_, part) => (
          <Button
            key={part}
            size="compact-xs"
            variant="light"
            loading={download.isPending && download.variables === part}
            onClick={() => download.mutate(part)}
          >
            {t("jobs.download", { part: formatNumber(part + 1) })}
          </Button>
        ))}
      </Group>
      {download.error && <Failure error={download.error} />}
    </Stack>
  );
}

function JobRow({ appId, job, kind }: { appId: string; job: Job; kind: Kind }) {
  const { t } = useTranslation();
  const definition = job.Definition as { S3Url?: string; S3UrlPrefix?: string; SegmentName?: string };
  const done = (job.CompletedPieces ?? 0) + (job.FailedPieces ?? 0);
  const total = job.TotalPieces ?? 0;
  const running = !ENDED.has(job.JobStatus);
  const color = job.JobStatus === "FAILED" ? "red" : running ? "blue" : "green";
  return (
    <Table.Tr data-testid="job">
      <Table.Td>{formatDate(job.CreationDate)}</Table.Td>
      <Table.Td>
        <Text size="sm">{definition.SegmentName}</Text>
        <Text size="xs" c="dimmed" style={{ wordBreak: "break-all" }}>
          {kind === "import" ? definition.S3Url : `${definition.S3UrlPrefix?.replace(/\/$/, "")}/${job.Id}/`}
        </Text>
      </Table.Td>
      <Table.Td>
        <Badge color={color} variant="light" data-testid="job-status" style={{ overflow: "visible" }}>
          {t(`jobs.state.${job.JobStatus}`)}
        </Badge>
      </Table.Td>
      <Table.Td>
        <Stack gap={4}>
          <Progress
            value={total ? (100 * done) / total : running ? 100 : 0}
            color={color}
            striped={running}
            animated={running}
            aria-label={t("jobs.progress")}
          />
          <Text size="xs" data-testid="job-counts">
            {t("jobs.counts", {
              pieces: formatNumber(done),
              total: formatNumber(total),
              rows: formatNumber(job.TotalProcessed ?? 0),
              failed: formatNumber(job.TotalFailures ?? 0),
            })}
          </Text>
          {kind === "export" && job.JobStatus === "COMPLETED" && <Downloads appId={appId} job={job} />}
          {(job.Failures ?? []).slice(0, 3).map((failure) => (
            <Text key={failure} size="xs" c="red" lang="en">
              {failure}
            </Text>
          ))}
        </Stack>
      </Table.Td>
    </Table.Tr>
  );
}

function ImportForm({ appId }: { appId: string }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [source, setSource] = useState<"file" | "url">("file");
  const [file, setFile] = useState<File | null>(null);
  const [url, setUrl] = useState("");
  const [format, setFormat] = useState<"CSV" | "JSON">("CSV");
  const [name, setName] = useState("");
  const start = useMutation({
    mutationFn: async () => {
      let location = url.trim();
      if (source === "file" && file) {
        const kept = await call(
          api.POST("/v1/apps/{application-id}/clarion/import-files", {
            params: { path: { "application-id": appId } },
            body: { FileName: uploadName(file.name), Content: await file.text() },
          }),
        );
        location = kept.S3Url;
      }
      return call(
        api.POST("/v1/apps/{application-id}/jobs/import", {
          params: { path: { "application-id": appId } },
          body: { S3Url: location, Format: format, RoleArn: CONSOLE_ROLE, DefineSegment: true, SegmentName: name, RegisterEndpoints: true },
        }),
      );
    },
    onSuccess: () => {
      setFile(null);
      setUrl("");
      setName("");
      void queryClient.invalidateQueries({ queryKey: ["jobs", "import", appId] });
      void queryClient.invalidateQueries({ queryKey: ["segments", appId] });
      void queryClient.invalidateQueries({ queryKey: ["segments-all", appId] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    start.mutate();
  };
  const ready = name.trim() && (source === "file" ? file : url.trim());
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit}>
      <Stack maw={560}>
        <Title order={4}>{t("jobs.import.title")}</Title>
        <SegmentedControl
          value={source}
          onChange={(value) => setSource(value as "file" | "url")}
          data={[
            { value: "file", label: t("jobs.import.fromFile") },
            { value: "url", label: t("jobs.import.fromUrl") },
          ]}
        />
        {source === "file" ? (
          <FileInput
            label={t("jobs.import.file")}
            description={t("jobs.import.fileHint")}
            accept=".csv,.json,.jsonl,.ndjson"
            value={file}
            onChange={(chosen) => {
              setFile(chosen);
              if (chosen) setFormat(formatOf(chosen.name));
            }}
            clearable
          />
        ) : (
          <TextInput
            label={t("jobs.import.url")}
            description={t("jobs.import.urlHint")}
            placeholder={`s3://bucket/${appId}/people.csv`}
            value={url}
            onChange={(e) => setUrl(e.currentTarget.value)}
          />
        )}
        <Select
          label={t("jobs.format")}
          data={[
            { value: "CSV", label: "CSV" },
            { value: "JSON", label: t("jobs.jsonLines") },
          ]}
          value={format}
          onChange={(value) => value && setFormat(value as "CSV" | "JSON")}
          allowDeselect={false}
        />
        <TextInput label={t("jobs.import.segmentName")} value={name} onChange={(e) => setName(e.currentTarget.value)} required />
        {start.error && <Failure error={start.error} />}
        <Group>
          <Button type="submit" disabled={!ready} loading={start.isPending}>
            {t("jobs.import.start")}
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

function ExportForm({ appId }: { appId: string }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [segmentId, setSegmentId] = useState<string | null>(null);
  const [prefix, setPrefix] = useState("");
  const segments = useQuery({
    queryKey: ["segments-all", appId],
    queryFn: () => call(api.GET("/v1/apps/{application-id}/segments", { params: { path: { "application-id": appId } } })),
  });
  const start = useMutation({
    mutationFn: () =>
      call(
        api.POST("/v1/apps/{application-id}/jobs/export", {
          params: { path: { "application-id": appId } },
          body: { S3UrlPrefix: prefix.trim(), RoleArn: CONSOLE_ROLE, SegmentId: segmentId ?? undefined },
        }),
      ),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["jobs", "export", appId] }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    start.mutate();
  };
  return (
    <Paper withBorder p="md" component="form" onSubmit={submit}>
      <Stack maw={560}>
        <Title order={4}>{t("jobs.export.title")}</Title>
        <Select
          label={t("jobs.export.segment")}
          placeholder={t("jobs.export.everyone")}
          data={(segments.data?.Item ?? []).map((s) => ({ value: s.Id, label: s.Name ?? s.Id }))}
          value={segmentId}
          onChange={setSegmentId}
          clearable
          searchable
        />
        <TextInput
          label={t("jobs.export.prefix")}
          description={t("jobs.export.prefixHint")}
          placeholder={`s3://bucket/${appId}/exports/`}
          value={prefix}
          onChange={(e) => setPrefix(e.currentTarget.value)}
          required
        />
        {start.error && <Failure error={start.error} />}
        <Group>
          <Button type="submit" disabled={!prefix.trim()} loading={start.isPending}>
            {t("jobs.export.start")}
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

export function ImportsAndExports({ appId }: { appId: string }) {
  const { t } = useTranslation();
  const can = useCan();
  return (
    <Stack>
      {can("CreateImportJob") && can("ClarionUploadImportFile") && <ImportForm appId={appId} />}
      <Title order={4}>{t("jobs.import.list")}</Title>
      <Jobs appId={appId} kind="import" />
      {can("CreateExportJob") && <ExportForm appId={appId} />}
      <Title order={4}>{t("jobs.export.list")}</Title>
      <Jobs appId={appId} kind="export" />
    </Stack>
  );
}
