// The managers' list and figures may be read from a replica of the database
// (api/replica.py). When the replica is behind, the server says by how much
// (Qorgau-Replica-Lag, in seconds) and the console says so above the list and
// the figures (js/console.js). Texts in Russian, Kazakh and English; js/i18n.js
// adds them to its STRINGS.

export const LAG_HEADER = "Qorgau-Replica-Lag";

export const REPLICA_STRINGS = {
  ru: {
    rv_replica_lag: "Данные могут отставать на {time}: они читаются с копии базы, которая догоняет основную. Все происшествия сохранены; обновите страницу чуть позже.",
  },
  kk: {
    rv_replica_lag: "Деректер {time} кешігуі мүмкін: олар негізгі базадан қалып келе жатқан көшірмеден оқылады. Барлық оқиға сақталған; бетті сәлден соң жаңартыңыз.",
  },
  en: {
    rv_replica_lag: "This may be up to {time} behind: it is read from a copy of the database that is catching up. Every incident is safe; reload in a little while.",
  },
};

/** Seconds the replica was behind for this answer (0: not behind, or the primary answered). */
export function replicaLag(response) {
  const n = Number.parseInt(response.headers.get(LAG_HEADER) || "", 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}
