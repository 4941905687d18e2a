# Gaffer: the server (target `server`, the default) and the node agent (target `node-agent`).
# Both run the TypeScript sources with tsx, exactly as `npm start` and `npm run node` do.
#   docker build -t gaffer .                          # the server
#   docker build -t gaffer-node --target node-agent .  # a node
FROM node:20-bookworm-slim AS base
# git for the node's mirrors and pushes; bubblewrap for its agent sandbox.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git bubblewrap ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json app.yml ./
COPY drizzle ./drizzle
COPY src ./src
COPY node ./node
ENV NODE_ENV=production

FROM base AS node-agent
ENV GAFFER_WORK_DIR=/work NODE_PORT=8007
RUN mkdir -p /work && chown node:node /work
USER node
VOLUME /work
EXPOSE 8007
CMD ["node_modules/.bin/tsx", "node/main.ts"]

# Last, so a plain `docker build .` gives the server.
FROM base AS server
ENV DATA_DIR=/data PORT=3000
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node_modules/.bin/tsx", "src/main.ts"]
