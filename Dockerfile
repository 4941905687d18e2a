# Gaffer: the server (target `server`, the default) and the node agent (target `node-agent`).
# Both run the JavaScript that `npm run build` compiles in the `build` stage; the image that runs
# has production dependencies only (no TypeScript, tsx or esbuild), as `npm start` runs dist/ too.
#   docker build -t gaffer .                          # the server
#   docker build -t gaffer-node --target node-agent .  # a node
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY node ./node
RUN npm run build

FROM node:20-bookworm-slim AS base
# git for the node's mirrors and pushes; bubblewrap for its agent sandbox.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git bubblewrap ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# What the compiled code reads at run time from the package's top (src/package-root.ts), and the
# build script, which `npm start` and `npm run admin` run first and which keeps the built dist/.
COPY app.yml .env.example ./
COPY scripts ./scripts
COPY drizzle ./drizzle
COPY --from=build /app/dist ./dist
ENV NODE_ENV=production

FROM base AS node-agent
ENV GAFFER_WORK_DIR=/work NODE_PORT=8007
RUN mkdir -p /work && chown node:node /work
USER node
VOLUME /work
EXPOSE 8007
CMD ["node", "dist/node/main.js"]

# Last, so a plain `docker build .` gives the server.
FROM base AS server
ENV DATA_DIR=/data PORT=3000
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--max-semi-space-size=2", "dist/src/main.js"]
