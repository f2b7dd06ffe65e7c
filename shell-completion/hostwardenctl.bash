# bash completion for hostwardenctl(1): commands, options, domain, node and migration names.
# Names come from hostwardend itself (hostwardenctl domains|nodes|instances|migrations), so
# they are those of this node's libvirt and of the cluster's store.

__hostwardenctl_column() { # COMMAND COLUMN: the values of a listing's column, no header
        hostwardenctl --no-ask-password "$1" 2>/dev/null |
                awk -v col="$2" 'NR > 1 && NF >= col && $0 !~ /listed\.$/ { print $col }'
}

_hostwardenctl() {
        local cur prev words cword
        _init_completion -s || return

        local commands="status check reload overview nodes instances domains migrate
                migrations migration disable enable force-down force-up fence evacuate rebuild
                setup-leases setup-console-tls init-cluster allow-unsynced-starts history archive"
        local options="--help --version --json --no-ask-password --block --cold --wait --watch --bandwidth=
                --live --to= --from= --insist --name= --adopt --reason= --since= --dry-run"
        commands+=" ha"
        commands+=" maintenance"
        options+=" --priority="
        options+=" --policy="
        options+=" --deadline= --abort --return"

        case $prev in
        --to | --from)
                COMPREPLY=($(compgen -W "$(__hostwardenctl_column nodes 1)" -- "$cur"))
                return
                ;;
        --bandwidth | --name | --reason | --since)
                return
                ;;
        --priority)
                return
                ;;
        --deadline)
                return
                ;;
        --policy) # the built-ins; a node's own [policy NAME] sections are typed
                COMPREPLY=($(compgen -W "nova minimal-downtime post-copy-when-stalled
                        suspend-if-needed" -- "$cur"))
                return
                ;;
        esac
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$options" -- "$cur"))
                [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
                return
        fi

        # the command and its arguments so far (options left out)
        local i verb="" args=()
        for ((i = 1; i < cword; i++)); do
                [[ ${words[i]} == -* ]] && continue
                [[ ${words[i - 1]} == --to || ${words[i - 1]} == --from ||
                        ${words[i - 1]} == --bandwidth || ${words[i - 1]} == --name ||
                        ${words[i - 1]} == --reason || ${words[i - 1]} == --since ]] && continue
                [[ ${words[i - 1]} == --priority ]] && continue
                [[ ${words[i - 1]} == --policy ]] && continue
                [[ ${words[i - 1]} == --deadline ]] && continue
                if [[ -z $verb ]]; then
                        verb=${words[i]}
                else
                        args+=("${words[i]}")
                fi
        done

        local n=${#args[@]}
        case $verb in
        "")
                COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        migrate)
                if ((n == 0)); then
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column domains 2)" -- "$cur"))
                elif ((n == 1)); then
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column nodes 1)" -- "$cur"))
                fi ;;
        migration)
                if ((n == 0)); then
                        COMPREPLY=($(compgen -W "show abort force-complete confirm revert" -- "$cur"))
                elif ((n == 1)); then
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column migrations 1)" -- "$cur"))
                fi ;;
        fence)
                if ((n == 0)); then
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column nodes 1)" -- "$cur"))
                elif ((n == 1)); then
                        COMPREPLY=($(compgen -W "status off on" -- "$cur"))
                fi ;;
        force-down | force-up | evacuate)
                ((n == 0)) &&
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column nodes 1)" -- "$cur")) ;;
        history) # a domain of the store's records (past ones too: any name is fine)
                ((n == 0)) &&
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column instances 2)" -- "$cur")) ;;
        ha)
                if ((n == 0)); then
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column domains 2)" -- "$cur"))
                elif ((n == 1)); then
                        COMPREPLY=($(compgen -W "off restart" -- "$cur"))
                fi ;;
        maintenance)
                ((n == 0)) && COMPREPLY=($(compgen -W "plan enter status cancel exit" -- "$cur")) ;;
        rebuild) # an instance of another node: the store's records, not this libvirt's domains
                ((n == 0)) &&
                        COMPREPLY=($(compgen -W "$(__hostwardenctl_column instances 1)" -- "$cur")) ;;
        esac
}
complete -F _hostwardenctl hostwardenctl
