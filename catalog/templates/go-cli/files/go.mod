module {{PROJECT_NAME}}

go {{GO_VERSION}}
